#!/usr/bin/env node
// tests/openapi/validate.mjs — is openapi.yaml a valid OpenAPI 3.1 document?
//
//   node tests/openapi/validate.mjs [openapi.yaml]
//
// Two checks, both with pinned npm packages (package.json):
//   1. @seriousme/openapi-schema-validator: the document against the
//      official OpenAPI 3.1 JSON Schema, with every $ref resolvable.
//   2. Ajv (JSON Schema 2020-12, strict mode): every schema under
//      components/schemas compiles, so a misspelt keyword
//      ("additionalProperty", "minitems") or a bad regex fails here instead
//      of silently validating nothing.  OpenAPI's own schema keywords are
//      declared to Ajv first.
// Prints "openapi: OK ..." and exits 0, or prints the errors and exits 1.
import { readFileSync } from "node:fs";
import { argv, exit } from "node:process";
import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020 from "ajv/dist/2020.js";
import YAML from "yaml";

const file = argv[2] || new URL("../../openapi.yaml", import.meta.url).pathname;
let failed = false;
const fail = (what, detail) => {
  failed = true;
  console.error(`openapi: ${what}`);
  if (detail !== undefined) console.error(JSON.stringify(detail, null, 2));
};

// ---- 1. the OpenAPI document ------------------------------------------
const text = readFileSync(file, "utf8");
const validator = new Validator();
const res = await validator.validate(text);
if (!res.valid) fail(`${file} does not match the OpenAPI schema`, res.errors);
else if (validator.version !== "3.1") fail(`${file} is OpenAPI ${validator.version}, want 3.1`);

// Every $ref must point at something (the schema check above does not
// follow references).
let doc;
try {
  doc = YAML.parse(text);
} catch (e) {
  fail(`${file} is not YAML: ${e.message}`);
  exit(1);
}
const resolve = (ref) => {
  if (!ref.startsWith("#/")) return undefined;
  let node = doc;
  for (const raw of ref.slice(2).split("/")) {
    const k = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (node === null || typeof node !== "object" || !(k in node)) return undefined;
    node = node[k];
  }
  return node;
};
const walk = (node, path) => {
  if (Array.isArray(node)) node.forEach((v, i) => walk(v, `${path}/${i}`));
  else if (node && typeof node === "object") {
    if (typeof node.$ref === "string" && resolve(node.$ref) === undefined)
      fail(`dangling $ref ${node.$ref} at ${path}`);
    for (const [k, v] of Object.entries(node)) walk(v, `${path}/${k}`);
  }
};
walk(doc, "#");

// ---- 2. the schemas, compiled strictly ---------------------------------
const ajv = new Ajv2020({ strict: true, allErrors: true, validateFormats: false });
// OpenAPI 3.1 schema-object keywords that are not JSON Schema's.
ajv.addVocabulary(["discriminator", "xml", "externalDocs", "example"]);
// The container of the named schemas below (an annotation for Ajv).
ajv.addVocabulary(["components"]);
// Hold the whole document as one schema so "#/components/..." resolves.
const schemas = (doc.components && doc.components.schemas) || {};
ajv.addSchema({ $id: "kvgate:openapi", components: { schemas } });
for (const name of Object.keys(schemas)) {
  try {
    ajv.getSchema(`kvgate:openapi#/components/schemas/${name}`);
  } catch (e) {
    fail(`schema ${name} does not compile: ${e.message}`);
  }
}
// Inline schemas in responses and request bodies reference components too.
const inline = [];
const collect = (node, path) => {
  if (Array.isArray(node)) node.forEach((v, i) => collect(v, `${path}/${i}`));
  else if (node && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) {
      // "x-sse-data": the schema of each SSE data line (an extension).
      if ((k === "schema" || k === "x-sse-data") && v && typeof v === "object") inline.push([`${path}/${k}`, v]);
      else collect(v, `${path}/${k}`);
    }
  }
};
collect({ paths: doc.paths, components: { responses: doc.components?.responses,
  requestBodies: doc.components?.requestBodies } }, "#");
for (const [path, schema] of inline) {
  const rewritten = JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"kvgate:openapi#/components/'));
  try {
    ajv.compile(rewritten);
  } catch (e) {
    fail(`schema at ${path} does not compile: ${e.message}`);
  }
}

if (failed) exit(1);
console.log(`openapi: OK ${file}: OpenAPI ${validator.version}, ${Object.keys(doc.paths).length} paths, ` +
  `${Object.keys(schemas).length} component schemas, ${inline.length} inline schemas compiled strictly`);
