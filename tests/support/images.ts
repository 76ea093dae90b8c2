/** The DARE images no default exists for (REQUIRED_IMAGES), as a site that built them sets them in dare:images. */
import { REQUIRED_IMAGES } from "../../components/dare-workloads";

export const SITE_IMAGES: Record<string, string> = Object.fromEntries(REQUIRED_IMAGES.map(([name]) => [name, `harbor.dare.example.org/dare/${name}:v3.6`]));
