// ESLint (flat config): typescript-eslint's recommended rules on every TypeScript file of the project.
// Formatting is Prettier's (prettier.config.mjs), so no stylistic rules here.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", "out/", "coverage/", "**/*.js", "**/*.mjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { linterOptions: { reportUnusedDisableDirectives: "error" } },
  // `const { omitted: _omitted, ...rest } = obj` is how the code drops a key.
  { rules: { "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", ignoreRestSiblings: true }] } },
  {
    // Tests, tools and policies read rendered resources and Kubernetes manifests: untyped JSON, addressed by path,
    // whose shape the assertions themselves check. The program (components/, lib/, index.ts) types what it builds.
    files: ["tests/**/*.ts", "tools/**/*.ts", "policy/**/*.ts"],
    rules: { "@typescript-eslint/no-explicit-any": "off" },
  },
);
