/**
 * DARE platform: one Pulumi program from the machines to the DARE services. The Pulumi CLI runs this file
 * (Pulumi.yaml's main); its export is the stack's outputs, each documented where program.ts makes it.
 */
import { dareProgram } from "./program";

export = dareProgram();
