// Compile every published JSON Schema with ajv in strict mode, as a client in another language
// would: the only knowledge beyond JSON Schema 2020-12 is meta/extensions.json.
// usage: node ajv_compile.js <node_modules dir> <schema dir>
const fs = require("fs");
const path = require("path");
const [, , modules, schemaDir] = process.argv;
const Ajv2020 = require(path.join(modules, "ajv/dist/2020")).default;
const addFormats = require(path.join(modules, "ajv-formats")).default;

const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats(ajv);
const extensions = JSON.parse(fs.readFileSync(path.join(schemaDir, "meta/extensions.json"), "utf8"));
ajv.addVocabulary(Object.keys(extensions.properties));

let compiled = 0;
const failures = [];
const walk = (dir) => {
  for (const name of fs.readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    if (fs.statSync(file).isDirectory()) walk(file);
    else if (name.endsWith(".json")) {
      try {
        ajv.compile(JSON.parse(fs.readFileSync(file, "utf8")));
        compiled += 1;
      } catch (error) {
        failures.push(`${path.relative(schemaDir, file)}: ${error.message}`);
      }
    }
  }
};
walk(schemaDir);
console.log(JSON.stringify({ compiled, failures }));
process.exit(failures.length ? 1 : 0);
