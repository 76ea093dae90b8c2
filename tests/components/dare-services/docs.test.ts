/**
 * docs/dare-services.md's "Facts per service" table is written for readers, the descriptors
 * (components/dare-services/workloads.ts) for the program: this keeps the two telling the same story.
 */
import * as fs from "fs";
import * as path from "path";
import { DARE_WORKLOADS, WORKLOADS } from "../../../components/dare-services/workloads";

const DOC = fs.readFileSync(path.join(__dirname, "..", "..", "..", "docs", "dare-services.md"), "utf8");

/** The table's rows by service: port, path on the platform, health, settings. */
function factsTable(): Map<string, string[]> {
  const start = DOC.indexOf("## Facts per service");
  const section = DOC.slice(start, DOC.indexOf("\n## ", start + 1));
  const rows = new Map<string, string[]>();
  for (const line of section.split("\n")) {
    if (!line.startsWith("| ") || line.startsWith("| service ")) continue;
    const cells = line
      .slice(2, -2)
      .split(" | ")
      .map((cell) => cell.trim());
    rows.set(cells[0], cells.slice(1));
  }
  return rows;
}

const rows = factsTable();

it("has a row for every DARE workload and no other", () => {
  expect([...rows.keys()].sort()).toEqual([...DARE_WORKLOADS].sort());
});

describe.each(DARE_WORKLOADS.map((w) => [w]))("%s's row", (workload) => {
  const facts = WORKLOADS[workload];
  const [port, route, health] = rows.get(workload) ?? ["", "", ""];
  const job = facts.kind === "CronJob";

  it("gives the descriptor's port", () => {
    if (job) expect(port).toBe("—");
    else expect(port).toMatch(new RegExp(`^${facts.port}\\b`));
  });

  it("gives the descriptor's paths on the platform, and whether the prefix is stripped", () => {
    if (!facts.routes) return expect(route).toBe("—");
    for (const p of facts.routes.paths) expect(route).toContain(`\`${p}\``);
    expect(route).toMatch(facts.routes.strip ? /stripped/ : /kept/);
  });

  it("gives the descriptor's kind of health check", () => {
    if (job) expect(health).toBe("—");
    else if ("http" in facts.health) expect(health).toMatch(/HTTP/);
    else if ("exec" in facts.health) expect(health).toContain(facts.health.exec[0]);
    else expect(health).toMatch(/^TCP/);
  });
});
