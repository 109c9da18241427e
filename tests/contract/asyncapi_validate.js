// Validate every AsyncAPI document against the official AsyncAPI 3.0.0 JSON Schema.
// usage: node asyncapi_validate.js <node_modules dir> <document dir>
const fs = require("fs");
const path = require("path");
const [, , modules, docDir] = process.argv;
const Ajv = require(path.join(modules, "ajv")).default;
const addFormats = require(path.join(modules, "ajv-formats")).default;
const schema = require(path.join(modules, "@asyncapi/specs/schemas/3.0.0-without-$id.json"));

// The official schema itself uses keywords ajv's strict mode does not know.
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
const validate = ajv.compile(schema);
let validated = 0;
const failures = [];
for (const name of fs.readdirSync(docDir).sort()) {
  if (!name.endsWith(".json")) continue;
  const doc = JSON.parse(fs.readFileSync(path.join(docDir, name), "utf8"));
  if (validate(doc)) validated += 1;
  else failures.push(`${name}: ${JSON.stringify(validate.errors.slice(0, 5))}`);
}
console.log(JSON.stringify({ validated, failures }));
process.exit(failures.length ? 1 : 0);
