// Strict validation of built-in Kubernetes objects with kubernetes-models' own validate().
//
// kubernetes-models (ESM only) ships ajv-standalone validators compiled from the Kubernetes OpenAPI
// spec, but those schemas do NOT set `additionalProperties: false`: an unknown field such as
// `spec.replica` passes. The JSON schemas themselves are not shipped (only the compiled code), so
// strictness is added by observing the validator: the object is wrapped in Proxies that record
// which property names the compiled validator reads.
//   - For a schema with `properties`, the compiled code reads `data.<name>` for EVERY declared
//     property (`void 0 !== data.replicas && ...`), so an own key that was never read is not in the
//     schema -> "unknown field" (what the API server's strict field validation reports).
//   - A map (`additionalProperties: <schema>`, e.g. labels, resources.limits) is walked with
//     `for (k in data)`, which hits the `ownKeys` trap: every key of that object is accepted.
//   - A free-form object (`type: object` without properties, e.g. RawExtension, FieldsV1,
//     JSONSchemaProps.default) is type-checked only: no property is read, so it is not checked.
//   - An object the validator never reached (e.g. its parent had a type error) is not checked
//     either; the type error is reported instead.
//   - Quirk: kubernetes-models' generator strips every schema key named `description` or `x-*`,
//     which also deletes the real FIELDS of that name. Compared against its own .d.ts interfaces,
//     exactly these are lost: `description` of PriorityClass, CustomResourceColumnDefinition,
//     ExternalDocumentation and JSONSchemaProps, and the `x-kubernetes-*` fields of JSONSchemaProps.
//     They are re-allowed by `strippedFieldAllowed` (PriorityClass root; anywhere in a CRD).
//
// Exports: validateBuiltin(obj) -> Promise<string[] | null>  (null: apiVersion/kind unknown here)
// CLI (tools/validate/index.ts runs it; a render directory is validated by validateRenderDir there):
//   node tools/validate/k8s-openapi.mjs --stdin      read a JSON array of objects on stdin, print a
//                                                    JSON array of (string[] | null), same order
import path from "node:path";
import { pathToFileURL } from "node:url";

/** The literal the render writes in place of secret values; any value error on it is ignored. */
export const SECRET_PLACEHOLDER = "[secret]";

const modelCache = new Map(); // "apiVersion|kind" -> Promise<class | null>

function loadModel(apiVersion, kind) {
  const key = `${apiVersion}|${kind}`;
  let p = modelCache.get(key);
  if (!p) {
    p = (async () => {
      if (typeof apiVersion !== "string" || typeof kind !== "string") return null;
      if (!/^[A-Z][A-Za-z0-9]*$/.test(kind)) return null;
      const parts = apiVersion.split("/");
      if (parts.length > 2) return null;
      const [group, version] = parts.length === 2 ? parts : ["", parts[0]];
      if (!/^[a-z0-9.-]*$/.test(group) || !/^v[0-9]+[a-z0-9]*$/.test(version)) return null;
      // core group lives at kubernetes-models/v1, others at kubernetes-models/<group>/<version>
      const spec = `kubernetes-models/${group ? group + "/" : ""}${version}/${kind}`;
      let mod;
      try {
        mod = await import(spec);
      } catch (e) {
        if (e && (e.code === "ERR_MODULE_NOT_FOUND" || e.code === "ERR_PACKAGE_PATH_NOT_EXPORTED")) return null;
        throw e;
      }
      const cls = mod[kind];
      // nested types (e.g. DeploymentSpec) are exported too, but have no apiVersion/kind
      if (typeof cls !== "function" || cls.apiVersion !== apiVersion || cls.kind !== kind) return null;
      if (typeof cls.prototype.validate !== "function") return null;
      return cls;
    })();
    modelCache.set(key, p);
  }
  return p;
}

/** Fields the compiled schemas lost (see header); `objPath` is "" for the root object. */
function strippedFieldAllowed(kind, objPath, key) {
  if (kind === "PriorityClass") return objPath === "" && key === "description";
  if (kind === "CustomResourceDefinition") return key === "description" || key.startsWith("x-kubernetes-");
  return false;
}

/** Wraps a (cloned) JSON tree in recording proxies. */
function instrument(root) {
  const meta = new WeakMap();
  const proxies = new WeakMap();
  const wrap = (v) => {
    if (v === null || typeof v !== "object") return v;
    let p = proxies.get(v);
    if (p) return p;
    const m = { read: new Set(), reads: 0, enumerated: false };
    meta.set(v, m);
    p = new Proxy(v, {
      get(t, k, r) {
        if (typeof k === "string") {
          m.reads++;
          m.read.add(k);
        }
        return wrap(Reflect.get(t, k, r));
      },
      has(t, k) {
        if (typeof k === "string") {
          m.reads++;
          m.read.add(k);
        }
        return Reflect.has(t, k);
      },
      ownKeys(t) {
        m.enumerated = true;
        return Reflect.ownKeys(t);
      },
    });
    proxies.set(v, p);
    return p;
  };
  return { proxy: wrap(root), meta };
}

function joinPath(base, key) {
  if (typeof key === "number" || /^[0-9]+$/.test(key)) return `${base}[${key}]`;
  if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(key)) return base ? `${base}.${key}` : key;
  return `${base}[${JSON.stringify(key)}]`;
}

/** JSON pointer ("/spec/template/0") -> "spec.template[0]" */
export function pointerToPath(ptr) {
  if (!ptr) return "";
  return ptr
    .split("/")
    .slice(1)
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
    .reduce((acc, seg) => joinPath(acc, seg), "");
}

function valueAt(root, ptr) {
  let cur = root;
  if (!ptr) return cur;
  for (const raw of ptr.split("/").slice(1)) {
    const seg = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (cur === null || typeof cur !== "object") return undefined;
    cur = cur[seg];
  }
  return cur;
}

/** ajv error objects -> readable "path: message" strings; ignores errors on "[secret]" values. */
export function formatAjvErrors(errors, data) {
  const out = [];
  const combinators = new Set(
    errors.filter((e) => e.keyword === "anyOf" || e.keyword === "oneOf").map((e) => e.instancePath),
  );
  for (const e of errors) {
    const p = pointerToPath(e.instancePath);
    const at = p || "(root)";
    // int-or-string etc.: one "anyOf" error is enough, drop the per-branch errors
    if (/\/(anyOf|oneOf)\/\d+\//.test(e.schemaPath) && combinators.has(e.instancePath)) continue;
    if (e.keyword !== "required" && e.keyword !== "additionalProperties" && valueAt(data, e.instancePath) === SECRET_PLACEHOLDER) continue;
    const prm = e.params || {};
    switch (e.keyword) {
      case "required":
        out.push(`${joinPath(p, prm.missingProperty)}: required field is missing`);
        break;
      case "additionalProperties":
        out.push(`${joinPath(p, prm.additionalProperty)}: unknown field "${prm.additionalProperty}"`);
        break;
      case "type":
        out.push(`${at}: must be ${prm.type}, got ${JSON.stringify(valueAt(data, e.instancePath))}`);
        break;
      case "enum":
        out.push(`${at}: must be one of ${JSON.stringify(prm.allowedValues)}, got ${JSON.stringify(valueAt(data, e.instancePath))}`);
        break;
      case "format":
        out.push(`${at}: must match format "${prm.format}", got ${JSON.stringify(valueAt(data, e.instancePath))}`);
        break;
      case "pattern":
        out.push(`${at}: must match pattern ${JSON.stringify(prm.pattern)}, got ${JSON.stringify(valueAt(data, e.instancePath))}`);
        break;
      case "anyOf":
      case "oneOf":
        out.push(`${at}: ${JSON.stringify(valueAt(data, e.instancePath))} does not match the allowed types (${e.keyword})`);
        break;
      default:
        out.push(`${at}: ${e.message || e.keyword} ${JSON.stringify(prm)}`);
    }
  }
  return [...new Set(out)];
}

/**
 * Validates one built-in object. Returns null when apiVersion/kind is not a built-in known to
 * kubernetes-models (caller falls back to CRDs), otherwise a list of errors (empty = valid).
 */
export async function validateBuiltin(obj) {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) return ["object expected"];
  const cls = await loadModel(obj.apiVersion, obj.kind);
  if (!cls) return null;
  const data = JSON.parse(JSON.stringify(obj));
  const { proxy, meta } = instrument(data);
  const errors = [];
  try {
    // kubernetes-models' own validate(): Model.prototype.validate -> runValidateFunc(fn, this).
    // Called on the proxy (not `new cls(...)`, whose constructor copies the data into plain objects).
    cls.prototype.validate.call(proxy);
  } catch (e) {
    if (e && Array.isArray(e.errors)) errors.push(...formatAjvErrors(e.errors, data));
    else throw e;
  }
  const unknown = [];
  const walk = (node, p) => {
    if (Array.isArray(node)) {
      node.forEach((v, i) => walk(v, joinPath(p, i)));
      return;
    }
    if (node === null || typeof node !== "object") return;
    const m = meta.get(node);
    const strict = m !== undefined && !m.enumerated && m.reads > 0;
    for (const k of Object.keys(node)) {
      const kp = joinPath(p, k);
      if (strict && !m.read.has(k) && !strippedFieldAllowed(obj.kind, p, k)) unknown.push(`${kp}: unknown field "${k}"`);
      else walk(node[k], kp);
    }
  };
  walk(data, "");
  return [...unknown, ...errors];
}

// ---------------------------------------------------------------------------------------------
// CLI

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString("utf8");
}

async function main(argv) {
  if (argv[0] !== "--stdin") {
    process.stderr.write("usage: node tools/validate/k8s-openapi.mjs --stdin  (JSON array of objects in, array of errors out)\n");
    return 2;
  }
  const objs = JSON.parse(await readStdin());
  const out = [];
  for (const o of objs) out.push(await validateBuiltin(o));
  process.stdout.write(JSON.stringify(out));
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
      process.exitCode = 2;
    },
  );
}
