/**
 * The layout's contract (CONTRIBUTING.md, "Where a file goes"): a layer's parts are its own. From another
 * layer, and from lib/ into a layer, only constants and types are imported, and the few small functions
 * named below that carry their owner's knowledge; never a component, and never a helper that belongs in
 * lib/. Checked with the TypeScript compiler on the real imports.
 */
import * as path from "path";
import * as ts from "typescript";
import { INGRESS_CLASS } from "../../components/networking";
import { BLOCK_STORAGE_CLASS, SHARED_STORAGE_CLASS } from "../../components/storage";

const ROOT = path.join(__dirname, "..", "..");

/** Functions another layer may call: knowledge of the layer that exports them. */
const SHARED_FUNCTIONS = new Set(["components/security.ts domainTls"]);

/** `components/<layer>.ts` and `components/<layer>/…` are that layer; `lib/…` is "lib"; anything else, undefined. */
function layerOf(file: string): string | undefined {
  const relative = path.relative(ROOT, file).split(path.sep);
  if (relative[0] === "lib") return "lib";
  if (relative[0] === "components" && relative.length >= 2) return relative[1].replace(/\.ts$/, "");
  return undefined;
}

interface CrossImport {
  from: string;
  to: string;
  name: string;
  kind: string;
}

/** Every named import of a layer's or lib's file from another layer, with what the name is. */
function crossLayerImports(): CrossImport[] {
  const config = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, "tsconfig.json"), {}, ts.sys as unknown as ts.ParseConfigFileHost)!;
  const files = config.fileNames.filter((f) => layerOf(f) !== undefined);
  const program = ts.createProgram(files, config.options);
  const checker = program.getTypeChecker();
  const found: CrossImport[] = [];
  for (const source of program.getSourceFiles()) {
    const fromLayer = layerOf(source.fileName);
    if (fromLayer === undefined || source.fileName.includes("node_modules")) continue;
    for (const statement of source.statements) {
      if (!ts.isImportDeclaration(statement) || !ts.isStringLiteral(statement.moduleSpecifier)) continue;
      const resolved = ts.resolveModuleName(statement.moduleSpecifier.text, source.fileName, config.options, ts.sys).resolvedModule;
      const toLayer = resolved && layerOf(resolved.resolvedFileName);
      if (!resolved || toLayer === undefined || toLayer === fromLayer || toLayer === "lib") continue;
      const clause = statement.importClause;
      const bindings = clause?.namedBindings;
      if (!clause || clause.isTypeOnly || !bindings || !ts.isNamedImports(bindings)) continue;
      for (const element of bindings.elements) {
        if (element.isTypeOnly) continue;
        const symbol = checker.getAliasedSymbol(checker.getSymbolAtLocation(element.name)!);
        const declaration = symbol.declarations?.[0];
        const isFunctionValue =
          declaration !== undefined &&
          ts.isVariableDeclaration(declaration) &&
          declaration.initializer !== undefined &&
          (ts.isArrowFunction(declaration.initializer) || ts.isFunctionExpression(declaration.initializer));
        const kind =
          symbol.flags & ts.SymbolFlags.Class
            ? "class"
            : symbol.flags & ts.SymbolFlags.Function || isFunctionValue
              ? "function"
              : symbol.flags & ts.SymbolFlags.Value
                ? "constant"
                : "type";
        found.push({
          from: path.relative(ROOT, source.fileName),
          to: path.relative(ROOT, resolved.resolvedFileName),
          name: element.name.text,
          kind,
        });
      }
    }
  }
  return found;
}

const imports = crossLayerImports();

it("sees the imports across layers it checks", () => {
  expect(imports.filter((i) => i.kind === "constant").length).toBeGreaterThan(5);
  expect(imports.filter((i) => i.kind === "type").length).toBeGreaterThan(1);
});

it("imports no component and no helper from another layer: only constants, types and the named shared functions", () => {
  const refused = imports.filter((i) => i.kind === "class" || (i.kind === "function" && !SHARED_FUNCTIONS.has(`${i.to} ${i.name}`)));
  expect(refused.map((i) => `${i.from} imports ${i.kind} ${i.name} from ${i.to}`)).toEqual([]);
});

it("spells the storage classes and the ingress class once, in the layer that owns them; the others import them", () => {
  const owned: Array<[string, string]> = [
    [BLOCK_STORAGE_CLASS, "components/storage.ts"],
    [SHARED_STORAGE_CLASS, "components/storage.ts"],
    [INGRESS_CLASS, "components/networking.ts"],
  ];
  const sources = ts.sys
    .readDirectory(path.join(ROOT, "components"), [".ts"])
    .concat([path.join(ROOT, "program.ts")])
    .map((file) => ({ file: path.relative(ROOT, file), text: ts.sys.readFile(file) ?? "" }));
  const retyped = owned.flatMap(([value, owner]) =>
    sources.filter((s) => s.file !== owner && s.text.includes(`"${value}"`)).map((s) => `${s.file} spells "${value}" (${owner}'s)`),
  );
  expect(retyped).toEqual([]);
});
