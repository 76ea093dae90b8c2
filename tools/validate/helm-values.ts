/**
 * Checks a Helm release's values against the chart's own defaults in
 * `shared/charts/<chart>/<version>/{Chart.yaml,values.yaml[,values.schema.json]}`.
 *
 * A key path set by the release is KNOWN when any of these says so (the sources are combined;
 * "anything below is accepted" from one of them wins):
 *  1. `global` at the root of the chart or of a subchart: anything below is accepted.
 *  2. values.yaml has the key. If its default is `{}` (empty map) or null (`key:` / `key: ~`), any
 *     keys below it are accepted (e.g. podAnnotations, nodeSelector, resources). If the default is a
 *     non-empty map, keys below are checked recursively. If it is a list or scalar, the release may
 *     replace it (lists accept any items), but map keys below it are unknown (unless 3 or 4 applies).
 *  3. values.yaml has the key commented out at the right nesting level (see COMMENTED-OUT KEYS
 *     below); anything below a commented-out key is accepted, since the comment is an example.
 *  4. the chart's values.schema.json declares it explicitly at that level: `properties`, a matching
 *     `patternProperties`, or `additionalProperties: true | {schema}` (traefik `ports.<name>`).
 *     A bare `type: object` in the schema is NOT taken as permission (it would hide typos).
 *  5. the key is a subchart's values key (`alias` or `name` of a Chart.yaml dependency) and the
 *     subchart's files exist in shared/charts: keys below are checked against the union of the
 *     parent's defaults for that key and the subchart's values.yaml (recursively, same rules).
 *  6. Kubernetes types that charts pass through with toYaml: below a known key named like a string
 *     map (`annotations`, `labels`, `nodeSelector`, `*Annotations`, `*Labels`, `matchLabels`…) any
 *     key is accepted; below `securityContext`/`podSecurityContext`/`resources`/`*Probe` the fields of
 *     the Kubernetes type are accepted even when the chart's default map lists only some of them.
 *     PASS_THROUGH lists the few non-empty maps a chart documents as pass-through (traefik
 *     `service.spec`).
 * Anything else is an error naming the full key path.
 *
 * What it does not do any more: validate the merged values against values.schema.json. The real `helm
 * template` does that (tests/engine/helm-template.test.ts renders every release with it); what Helm does not
 * do is refuse a key the chart never reads, which is all this checker is for.
 *
 * COMMENTED-OUT KEYS. Many charts document optional keys only as comments, e.g.
 *     service:
 *       type: ClusterIP
 *       # loadBalancerIP: ""          -> service.loadBalancerIP is a known key
 *     lifecycle: {}
 *     # preStop:                      -> root-level preStop (the # is at column 0)
 *     #   sleep:                      -> preStop.sleep
 * A comment line is read as a key when, after its `#` and optional spaces, it starts with
 * `name:` followed by a space or the end of the line (so `# https://…` and `# -- text` are not
 * keys; `##` lines are prose and never keys). Its nesting level is decided like YAML indentation,
 * using an "effective column":
 *   - the column of the `#` for the first key line of a comment block (a run of consecutive
 *     comment lines with the `#` in the same column), so the `#` stands where the key would be;
 *   - for later key lines of the same block, the `#` column plus how much deeper the text is
 *     indented than the block's first key line (`#   sleep:` under `# preStop:` is one level deeper).
 * The parent is the nearest preceding key (real or commented) with a smaller column, exactly as
 * for real YAML keys; real keys come from the parsed document, so lines inside block scalars
 * (`config: |` ...) are never read as comments. A commented key inside another comment
 * (`#   # pushInterval: 30s`) counts at the column of its inner `#`. `- name:` items are list
 * entries and are only used for nesting.
 * Second reading, only for blocks whose `#` is at column 0: a line commented out by prefixing `#`
 * keeps its indentation after it, so `#  podAntiAffinity:` under `affinity: {}` is also read at the
 * column of its text (affinity.podAntiAffinity). A key counts if either reading places it.
 * Not keys: comments nested below a real key whose default is a scalar (`port: 8000` then
 * `#   hostPort:` one level deeper), `# Ref: https://…`-style links, and capitalised prose
 * (`# Note: this is …`). What remains is deliberately a little generous (a prose line such as
 * `# Example:` registers a harmless key "Example"); it errs towards accepting documented keys.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { sharedDir } from "./shared";

export interface HelmRelease {
  chart: string;
  version: string;
  values?: unknown;
  repository?: string;
  namespace?: string;
}

type JsonObject = { [k: string]: unknown };

function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function hasOwn(o: JsonObject, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

function chartsDir(): string {
  return path.join(sharedDir(), "charts");
}

function joinKey(base: string, key: string): string {
  const k = /^[A-Za-z0-9_$-]+$/.test(key) ? key : JSON.stringify(key);
  return base ? `${base}.${k}` : k;
}

/** `{chart: [versions]}` for everything in shared/charts. */
export function chartVersions(): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const dir = chartsDir();
  for (const c of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!c.isDirectory()) continue;
    const versions = fs
      .readdirSync(path.join(dir, c.name), { withFileTypes: true })
      .filter((v) => v.isDirectory() && fs.existsSync(path.join(dir, c.name, v.name, "values.yaml")))
      .map((v) => v.name)
      .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    if (versions.length) out[c.name] = versions;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// commented-out keys

interface CommentNode {
  commented: boolean;
  children: Map<string, CommentNode>;
}

function newNode(): CommentNode {
  return { commented: false, children: new Map() };
}

function addPath(root: CommentNode, p: string[], commented: boolean): void {
  let cur = root;
  for (const seg of p) {
    let next = cur.children.get(seg);
    if (!next) {
      next = newNode();
      cur.children.set(seg, next);
    }
    cur = next;
  }
  if (commented) cur.commented = true;
}

const KEY_RE = /^(-\s+)?(?:"([^"]+)"|'([^']+)'|([A-Za-z_][A-Za-z0-9_./-]*))\s*:(?:\s|$)/;

/** Builds the tree of commented-out keys of a values.yaml (see the header for the rule). */
export function scanCommentedKeys(text: string, doc: YAML.Document): CommentNode {
  const root = newNode();
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) lineStarts.push(i + 1);
  const lineOf = (off: number): number => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= off) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const excluded = new Set<number>(); // lines inside multi-line scalars / flow collections
  // line -> keys; `scalar`: the key's default is a non-null scalar, so nothing can nest below it
  const realKeys = new Map<number, { col: number; path: string[]; scalar: boolean }[]>();
  const markSpan = (range: [number, number, number] | null | undefined): void => {
    if (!range) return;
    const a = lineOf(range[0]);
    const b = lineOf(Math.max(range[0], range[1] - 1));
    for (let l = a + 1; l <= b; l++) excluded.add(l);
  };
  const walk = (node: unknown, p: string[]): void => {
    if (YAML.isMap(node)) {
      if (node.flow) markSpan(node.range);
      for (const pair of node.items) {
        const k = pair.key;
        if (YAML.isScalar(k) && k.range) {
          const line = lineOf(k.range[0]);
          const key = String(k.value);
          const list = realKeys.get(line) ?? [];
          const v = pair.value;
          const scalar = YAML.isScalar(v) && v.value !== null && v.value !== undefined;
          list.push({ col: k.range[0] - lineStarts[line], path: [...p, key], scalar });
          realKeys.set(line, list);
          walk(pair.value, [...p, key]);
        }
      }
    } else if (YAML.isSeq(node)) {
      if (node.flow) markSpan(node.range);
      for (const item of node.items) walk(item, [...p, "[]"]);
    } else if (YAML.isScalar(node)) {
      markSpan(node.range);
    }
  };
  walk(doc.contents, []);

  const lines = text.split("\n");
  // Two readings of a comment's nesting level (see the header); a key counts under either.
  for (const reading of ["hash", "text"] as const) {
    // `dead`: below a real scalar key (e.g. "port: 8000") - such comments are not registered
    const stack: { col: number; path: string[]; dead: boolean }[] = [];
    let block: { hashCol: number; base: number | null } | null = null;
    for (let i = 0; i < lines.length; i++) {
      const keys = realKeys.get(i);
      if (keys) {
        block = null;
        for (const k of keys) {
          while (stack.length && stack[stack.length - 1].col >= k.col) stack.pop();
          stack.push({ col: k.col, path: k.path, dead: k.scalar });
        }
        continue;
      }
      const line = lines[i];
      const trimmed = line.trimStart();
      if (excluded.has(i) || !trimmed.startsWith("#")) {
        block = null; // blank lines and value continuation lines end a comment block
        continue;
      }
      const hashCol = line.length - trimmed.length;
      if (!block || block.hashCol !== hashCol) block = { hashCol, base: null };
      let rest = trimmed.slice(1);
      if (rest.startsWith("#")) continue; // "##" prose
      let off = rest.length - rest.trimStart().length; // spaces between '#' and the text
      rest = rest.trimStart();
      if (rest.startsWith("#")) {
        // a commented key inside a commented block ("#   # key: v"): its inner '#' stands in
        // the key's column, extra spaces after the inner '#' nest deeper
        if (rest.startsWith("##")) continue;
        const inner = rest.slice(1);
        const innerSpaces = inner.length - inner.trimStart().length;
        off += reading === "hash" ? Math.max(0, innerSpaces - 1) : 1 + innerSpaces;
        rest = inner.trimStart();
      }
      const m = KEY_RE.exec(rest);
      if (!m) continue;
      const key = m[2] ?? m[3] ?? m[4];
      const value = rest.slice(m[0].length).trim();
      // prose such as "# Ref: https://…", "# Note: this is …" is not a key
      if (/^https?:\/\//.test(value) && /^(refs?|see|docs?|link|source|more|info|details|url)$/i.test(key)) continue;
      if (/^[A-Z][a-z]/.test(key) && /\s/.test(value)) continue;
      let eff: number;
      if (reading === "hash") {
        if (block.base === null) block.base = off;
        eff = hashCol + Math.max(0, off - block.base);
      } else {
        // only for lines commented out at column 0 that kept their indentation ("#  key:");
        // "# key:" lines at column 0 take part in the nesting but are registered by "hash" only
        if (hashCol !== 0) continue;
        eff = hashCol + 1 + off; // the column of the key text itself
      }
      const register = reading === "hash" || off >= 2;
      while (stack.length && stack[stack.length - 1].col >= eff) stack.pop();
      const top = stack.length ? stack[stack.length - 1] : { path: [] as string[], dead: false };
      const parent = top.path;
      const dead = top.dead;
      if (m[1]) {
        // "- key:" list item: the item and its keys are only used for nesting
        stack.push({ col: eff, path: [...parent, "[]"], dead });
        stack.push({ col: eff + m[1].length, path: [...parent, "[]", key], dead });
        if (!dead && register) addPath(root, [...parent, "[]", key], true);
      } else {
        stack.push({ col: eff, path: [...parent, key], dead });
        if (!dead && register) addPath(root, [...parent, key], true);
      }
    }
  }
  return root;
}

// ---------------------------------------------------------------------------------------------
// charts

interface LoadedChart {
  name: string;
  version: string;
  dir: string;
  defaults: JsonObject;
  comments: CommentNode;
  /** values.schema.json, where the chart has one: a source of known keys (rule 4). */
  schema: { root: JsonObject } | null;
  schemaError: string | null;
  /** values key -> subchart found in shared/charts */
  subcharts: Map<string, LoadedChart>;
}

const chartCache = new Map<string, LoadedChart | string>();
/** Remote $refs (Helm downloads them) cannot be resolved offline: they are dropped (anything). */
function localizeSchema(v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => localizeSchema(x));
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === "$ref" && typeof x === "string" && !x.startsWith("#")) continue;
    out[k] = localizeSchema(x);
  }
  return out;
}

function readSchema(file: string): { root: JsonObject } {
  const raw = JSON.parse(fs.readFileSync(file, "utf8")) as unknown;
  if (!isObject(raw)) throw new Error("not a JSON object");
  return { root: localizeSchema(raw) as JsonObject };
}

/** Go RE2 accepts inline flags such as `(?i)`; JS does not: approximate with a whole-pattern `i`. */
function lenientRegExp(pattern: string, flags: string): RegExp {
  try {
    return new RegExp(pattern, flags);
  } catch (e) {
    if (/\(\?i\)/.test(pattern)) return new RegExp(pattern.replace(/\(\?i\)/g, ""), flags + "i");
    throw e;
  }
}

/** Resolves a dependency version ("4.56.1", "0.12.*", "v1.20.6") against shared/charts. */
function resolveVersion(name: string, wanted: string): string | null {
  const available = chartVersions()[name] ?? [];
  const strip = (v: string): string => v.replace(/^v/, "");
  const exact = available.find((v) => v === wanted) ?? available.find((v) => strip(v) === strip(wanted));
  if (exact) return exact;
  if (/[*xX]/.test(wanted)) {
    const re = new RegExp("^v?" + strip(wanted).replace(/\./g, "\\.").replace(/[*xX]/g, "[0-9A-Za-z.-]+") + "$");
    const matches = available.filter((v) => re.test(v));
    if (matches.length) return matches[matches.length - 1];
  }
  return null;
}

function loadChart(name: string, version: string, seen: string[] = []): LoadedChart | string {
  const key = `${chartsDir()}|${name}|${version}`;
  const cached = chartCache.get(key);
  if (cached !== undefined) return cached;
  const dir = path.join(chartsDir(), name, version);
  let result: LoadedChart | string;
  if (!/^[A-Za-z0-9._-]+$/.test(name) || !/^[A-Za-z0-9._+-]+$/.test(version) || !fs.existsSync(path.join(dir, "values.yaml"))) {
    const have = chartVersions()[name];
    result = have
      ? `chart ${name} version ${version} is not in shared/charts (have: ${have.join(", ")})`
      : `chart ${name} is not in shared/charts (have: ${Object.keys(chartVersions()).join(", ")})`;
  } else {
    const text = fs.readFileSync(path.join(dir, "values.yaml"), "utf8");
    // YAML 1.1, as Helm (go-yaml v2) reads values files
    const doc = YAML.parseDocument(text, { version: "1.1" });
    if (doc.errors.length) {
      result = `${name} ${version} values.yaml: ${doc.errors[0].message}`;
    } else {
      const js = doc.toJS({ maxAliasCount: -1 }) as unknown;
      const chart: LoadedChart = {
        name,
        version,
        dir,
        defaults: isObject(js) ? js : {},
        comments: scanCommentedKeys(text, doc),
        schema: null,
        schemaError: null,
        subcharts: new Map(),
      };
      const schemaFile = path.join(dir, "values.schema.json");
      if (fs.existsSync(schemaFile)) {
        try {
          chart.schema = readSchema(schemaFile);
        } catch (e) {
          chart.schemaError = `${name} ${version} values.schema.json: cannot read: ${(e as Error).message}`;
        }
      }
      const chartYaml = path.join(dir, "Chart.yaml");
      const meta = fs.existsSync(chartYaml) ? (YAML.parse(fs.readFileSync(chartYaml, "utf8")) as unknown) : null;
      const deps = isObject(meta) && Array.isArray(meta.dependencies) ? meta.dependencies : [];
      for (const d of deps) {
        if (!isObject(d) || typeof d.name !== "string") continue;
        const v = resolveVersion(d.name, String(d.version ?? ""));
        if (!v || seen.includes(`${d.name}@${v}`)) continue; // not copied (library/local charts...)
        const sub = loadChart(d.name, v, [...seen, `${name}@${version}`]);
        if (typeof sub !== "string") chart.subcharts.set(typeof d.alias === "string" ? d.alias : d.name, sub);
      }
      result = chart;
    }
  }
  chartCache.set(key, result);
  return result;
}

// ---------------------------------------------------------------------------------------------
// key check

type Source =
  | { t: "values"; node: unknown; comments: CommentNode | undefined; chart?: LoadedChart }
  | { t: "schema"; node: unknown; root: JsonObject }
  | { t: "k8s"; fields: ReadonlySet<string> };

// Kubernetes API types that charts pass through with toYaml: when the chart's default is a
// non-empty map (e.g. cert-manager `securityContext: {runAsNonRoot: true, seccompProfile: …}`),
// the other fields of the Kubernetes type are valid keys too (anything below them is accepted).
const SECURITY_CONTEXT = [
  "allowPrivilegeEscalation",
  "appArmorProfile",
  "capabilities",
  "privileged",
  "procMount",
  "readOnlyRootFilesystem",
  "runAsGroup",
  "runAsNonRoot",
  "runAsUser",
  "seLinuxOptions",
  "seccompProfile",
  "windowsOptions",
];
const POD_SECURITY_CONTEXT = [
  "appArmorProfile",
  "fsGroup",
  "fsGroupChangePolicy",
  "runAsGroup",
  "runAsNonRoot",
  "runAsUser",
  "seLinuxChangePolicy",
  "seLinuxOptions",
  "seccompProfile",
  "supplementalGroups",
  "supplementalGroupsPolicy",
  "sysctls",
  "windowsOptions",
];
const PROBE = [
  "exec",
  "failureThreshold",
  "grpc",
  "httpGet",
  "initialDelaySeconds",
  "periodSeconds",
  "successThreshold",
  "tcpSocket",
  "terminationGracePeriodSeconds",
  "timeoutSeconds",
];
const K8S_TYPED: [RegExp, ReadonlySet<string>][] = [
  [/^podSecurityContext$|PodSecurityContext$/, new Set(POD_SECURITY_CONTEXT)],
  // charts use `securityContext` for the pod or the container: accept the fields of both
  [/^(securityContext|containerSecurityContext)$|SecurityContext$/, new Set([...SECURITY_CONTEXT, ...POD_SECURITY_CONTEXT])],
  [/^resources$|Resources$/, new Set(["limits", "requests", "claims"])],
  [/^(liveness|readiness|startup)Probe$/, new Set(PROBE)],
];
/** String maps by nature (labels, annotations, selectors): any keys below a known key. */
const STRING_MAP_KEY =
  /^(annotations|labels|nodeSelector|matchLabels|selector|selectorLabels)$|(Annotations|Labels|NodeSelector|MatchLabels)$/;
/** Non-empty maps that the chart documents as pass-through (chart -> key paths). */
const PASS_THROUGH: Record<string, string[]> = {
  // values.yaml: "Additional entries here will be added to the Service spec"
  traefik: ["service.spec"],
  // values.yaml: "values in map will be converted to ini format": each key is a section of Grafana's own
  // configuration (grafana.com/docs/grafana/latest/setup-grafana/configure-grafana/), not a chart key.
  grafana: ['"grafana.ini"'],
  "kube-prometheus-stack": ['grafana."grafana.ini"'],
};

type Lookup = "any" | "none" | Source[];

function resolveRef(node: unknown, root: JsonObject, depth = 0): unknown {
  let cur = node;
  while (isObject(cur) && typeof cur.$ref === "string" && cur.$ref.startsWith("#") && depth++ < 32) {
    let target: unknown = root;
    for (const seg of cur.$ref.slice(1).split("/").filter(Boolean)) {
      const s = decodeURIComponent(seg).replace(/~1/g, "/").replace(/~0/g, "~");
      target = isObject(target) ? target[s] : undefined;
    }
    cur = target;
  }
  return cur;
}

function schemaLookup(src: { node: unknown; root: JsonObject }, key: string): Lookup {
  const children: Source[] = [];
  let any = false;
  const visit = (n: unknown, depth: number): void => {
    const s = resolveRef(n, src.root);
    if (!isObject(s) || depth > 8) return;
    if (isObject(s.properties) && hasOwn(s.properties, key)) {
      children.push({ t: "schema", node: s.properties[key], root: src.root });
    } else {
      let matched = false;
      if (isObject(s.patternProperties)) {
        for (const [re, sub] of Object.entries(s.patternProperties)) {
          try {
            if (lenientRegExp(re, "u").test(key)) {
              children.push({ t: "schema", node: sub, root: src.root });
              matched = true;
            }
          } catch {
            /* ignore patterns JS cannot compile */
          }
        }
      }
      if (!matched) {
        if (s.additionalProperties === true) any = true;
        else if (isObject(s.additionalProperties)) children.push({ t: "schema", node: s.additionalProperties, root: src.root });
      }
    }
    for (const c of ["allOf", "anyOf", "oneOf"]) {
      const v = s[c];
      if (Array.isArray(v)) for (const x of v) visit(x, depth + 1);
    }
    if (isObject(s.then)) visit(s.then, depth + 1);
    if (isObject(s.else)) visit(s.else, depth + 1);
  };
  visit(src.node, 0);
  if (any) return "any";
  return children.length ? children : "none";
}

function valuesLookup(src: Extract<Source, { t: "values" }>, key: string): Lookup {
  const out: Source[] = [];
  if (src.chart) {
    if (key === "global") return "any";
    const sub = src.chart.subcharts.get(key);
    if (sub) {
      out.push({ t: "values", node: sub.defaults, comments: sub.comments, chart: sub });
      if (sub.schema) out.push({ t: "schema", node: sub.schema.root, root: sub.schema.root });
    }
  }
  const isSubchart = out.length > 0; // then the subchart's values.yaml decides, even if the parent has `key: {}`
  const c = src.comments?.children.get(key);
  if (isObject(src.node) && hasOwn(src.node, key)) {
    const dv = src.node[key];
    const empty = dv === null || dv === undefined || (isObject(dv) && Object.keys(dv).length === 0);
    if (empty && !isSubchart) return "any";
    out.push({ t: "values", node: dv, comments: c });
  } else if (c) {
    if (c.commented && !isSubchart) return "any";
    out.push({ t: "values", node: undefined, comments: c });
  }
  return out.length ? out : "none";
}

function describeSources(sources: Source[]): string {
  const charts = sources.flatMap((s) => (s.t === "values" && s.chart ? [`${s.chart.name} ${s.chart.version}`] : []));
  return charts.join(" / ");
}

function checkKeys(values: JsonObject, sources: Source[], keyPath: string, where: string, errors: string[], passThrough: string[]): void {
  for (const [key, v] of Object.entries(values)) {
    const kp = joinKey(keyPath, key);
    const children: Source[] = [];
    let any = false;
    for (const src of sources) {
      const r =
        src.t === "values" ? valuesLookup(src, key) : src.t === "schema" ? schemaLookup(src, key) : src.fields.has(key) ? "any" : "none";
      if (r === "any") any = true;
      else if (r !== "none") children.push(...r);
    }
    if (any) continue;
    if (!children.length) {
      errors.push(`unknown key "${kp}" (not in the values.yaml of ${where}, not even commented out)`);
      continue;
    }
    if (STRING_MAP_KEY.test(key) || passThrough.includes(kp)) continue;
    for (const [re, fields] of K8S_TYPED) {
      if (re.test(key)) {
        children.push({ t: "k8s", fields });
        break;
      }
    }
    if (isObject(v)) {
      const subWhere = children.some((s) => s.t === "values" && s.chart) ? `${where} / ${describeSources(children)}` : where;
      checkKeys(v, children, kp, subWhere, errors, passThrough);
    }
  }
}

// ---------------------------------------------------------------------------------------------

/** Chart name from a release's `chart` field ("traefik", "repo/traefik", "oci://host/charts/traefik"). */
function chartName(chart: string): string {
  const parts = chart.split("/").filter(Boolean);
  return parts.length ? parts[parts.length - 1] : chart;
}

/** Validates one Helm release's values; returns a list of errors (empty = valid). */
export function validateHelmValues(release: HelmRelease): string[] {
  if (!release || typeof release.chart !== "string" || typeof release.version !== "string") {
    return ["release must have string fields chart and version"];
  }
  const chart = loadChart(chartName(release.chart), release.version);
  if (typeof chart === "string") return [chart];
  const values = release.values ?? {};
  if (!isObject(values)) return [`values must be a map, got ${JSON.stringify(values)}`];
  const errors: string[] = [];
  const sources: Source[] = [{ t: "values", node: chart.defaults, comments: chart.comments, chart }];
  if (chart.schema) sources.push({ t: "schema", node: chart.schema.root, root: chart.schema.root });
  // A schema that cannot be read leaves its keys unknown: say why, once per chart.
  const schemaErrors = (c: LoadedChart): string[] => [
    ...(c.schemaError ? [c.schemaError] : []),
    ...[...c.subcharts.values()].flatMap(schemaErrors),
  ];
  errors.push(...schemaErrors(chart));
  checkKeys(values, sources, "", `${chart.name} ${chart.version}`, errors, PASS_THROUGH[chart.name] ?? []);
  return errors;
}
