// @ts-check
import { defineConfig, globalIgnores } from "eslint/config";
import { createTypeScriptImportResolver } from "eslint-import-resolver-typescript";
import { importX } from "eslint-plugin-import-x";
import tseslint from "typescript-eslint";

export default defineConfig(
  globalIgnores([
    "**/dist/",
    "**/node_modules/",
    "**/coverage/",
    "**/.dovetail-data/",
    "tmp*/",
  ]),

  {
    name: "dovetail/typescript",
    files: ["**/*.ts", "**/*.js"],
    extends: [tseslint.configs.recommendedTypeChecked],
    plugins: { "import-x": importX },
    languageOptions: {
      parserOptions: {
        // Each file is type-checked with the nearest tsconfig.json; root-level
        // JS files (this config) are not in any tsconfig and use a default one.
        projectService: { allowDefaultProject: ["*.js", "packages/cli/bin/*.js"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    settings: {
      "import-x/extensions": [".ts", ".js"],
      "import-x/parsers": { "@typescript-eslint/parser": [".ts"] },
      "import-x/resolver-next": [
        // Resolves `./x.js` to `./x.ts` and workspace package names to their
        // sources (the same "@dovetail/source" condition TypeScript uses), so
        // cycles are found across files and across packages.
        createTypeScriptImportResolver({
          project: "tsconfig.json",
          conditionNames: ["@dovetail/source", "types", "import", "node", "default"],
        }),
      ],
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_" },
      ],
      "import-x/no-cycle": ["error", { ignoreExternal: true }],
    },
  },
);
