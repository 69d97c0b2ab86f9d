// `tunnelctl schema`: the JSON Schema that validates manifests, for editors and CI.
import { tunnelSchemaText } from "../manifest/index.ts";
import { EXIT_OK, type CliOutput } from "./exit-codes.ts";

export function runSchema(output: CliOutput): number {
  output.out(tunnelSchemaText.endsWith("\n") ? tunnelSchemaText : `${tunnelSchemaText}\n`);
  return EXIT_OK;
}
