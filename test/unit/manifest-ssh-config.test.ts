// spec.sshConfig: the OpenSSH client config filling what a manifest leaves out. An in-memory file
// system (SshConfigIo) stands in for the disk; the config is parsed by the ssh-config package.
import assert from "node:assert/strict";
import { describe, it, test } from "node:test";
import { loadManifestText, type LoadResult } from "../../src/manifest/index.ts";
import { parseProxyJump } from "../../src/ssh-config/proxy-jump.ts";
import { hostKeyPolicy } from "../../src/ssh-config/resolve.ts";
import { expandTokens } from "../../src/ssh-config/tokens.ts";
import type { SshConfigIo } from "../../src/ssh-config/load.ts";

const homeDir = "/home/op";

function memoryIo(files: Record<string, string>): SshConfigIo {
  const missing = (path: string): never => {
    throw Object.assign(new Error(`ENOENT: ${path}`), { code: "ENOENT" });
  };
  return {
    readFile: (path) => files[path] ?? missing(path),
    readDir: (dir) => {
      const names = Object.keys(files).filter((path) => path.startsWith(`${dir}/`) && !path.slice(dir.length + 1).includes("/"));
      return names.length > 0 ? names.map((path) => path.slice(dir.length + 1)) : missing(dir);
    },
  };
}

function load(spec: string, files: Record<string, string>): LoadResult {
  const text = `apiVersion: tunnelctl/v1\nkind: Tunnel\nmetadata: {name: t}\nspec:\n${spec}`;
  return loadManifestText("/srv/m/t.yaml", text, { homeDir, localUser: "op", sshConfigIo: memoryIo(files), displayPath: "t.yaml" });
}

const CONFIG = `# the operator's config
Include /home/op/.ssh/conf.d/*.conf

Host db
  HostName db.internal
  Port 2200
  User deploy
  IdentityFile ~/.ssh/id_db
  ProxyJump bastion

Host bastion
  HostName bastion.example.com
  User jump
  IdentityFile %d/.ssh/id_%h
  UserKnownHostsFile ~/.ssh/known_hosts.bastion

Host *.prod !legacy.prod
  StrictHostKeyChecking accept-new

Host *
  ServerAliveInterval 5
  ServerAliveCountMax 4
  ConnectTimeout 7
  IdentityFile ~/.ssh/id_default
`;

const INCLUDED = `Host cache
  HostName cache.internal
  User redis
  ProxyJump db
`;

const files = { "/home/op/.ssh/config": CONFIG, "/home/op/.ssh/conf.d/10-cache.conf": INCLUDED };

function specOf(result: LoadResult) {
  assert.deepEqual(result.errors.map(String), []);
  const spec = result.documents[0]?.tunnel?.spec;
  assert.ok(spec);
  return spec;
}

describe("spec.sshConfig", () => {
  it("an alias: HostName, Port, User, IdentityFile, keepalive and ConnectTimeout, and ProxyJump through the bastion's own settings", () => {
    const spec = specOf(load("  host: db\n  sshConfig: true\n", files));
    assert.equal(spec.host, "db.internal");
    assert.equal(spec.port, 2200);
    assert.equal(spec.username, "deploy");
    assert.deepEqual(spec.auth, { privateKeyFile: "/home/op/.ssh/id_db" }, "the first IdentityFile that applies");
    assert.deepEqual(spec.keepalive, { interval: 5000, countMax: 4 });
    assert.equal(spec.connectTimeout, 7000);
    assert.deepEqual(spec.jump, [
      {
        host: "bastion.example.com",
        port: 22,
        username: "jump",
        auth: { privateKeyFile: "/home/op/.ssh/id_bastion.example.com" },
        hostKey: { knownHostsFile: "/home/op/.ssh/known_hosts.bastion", fingerprints: [], policy: "strict" },
      },
    ]);
  });

  it("Include (a glob): an included alias whose ProxyJump is itself an alias with a ProxyJump", () => {
    const spec = specOf(load("  host: cache\n  sshConfig: ~/.ssh/config\n", files));
    assert.equal(spec.host, "cache.internal");
    assert.equal(spec.username, "redis");
    assert.deepEqual(spec.jump?.map((hop) => `${hop.username}@${hop.host}:${hop.port}`), ["jump@bastion.example.com:22", "deploy@db.internal:2200"]);
  });

  it("Host * defaults and !negation", () => {
    const prod = specOf(load("  host: api.prod\n  sshConfig: true\n", files));
    assert.equal(prod.hostKey.policy, "accept-new");
    assert.equal(prod.username, "op", "no User anywhere: the local user, as ssh");
    assert.deepEqual(prod.auth, { privateKeyFile: "/home/op/.ssh/id_default" });
    const legacy = specOf(load("  host: legacy.prod\n  sshConfig: true\n", files));
    assert.equal(legacy.hostKey.policy, "strict", "!legacy.prod excludes it from *.prod");
  });

  it("the manifest's own fields win, one by one", () => {
    const spec = specOf(load("  host: db\n  port: 22\n  username: admin\n  keepalive: {interval: 1s}\n  hostKey: {policy: accept-new}\n  sshConfig: true\n", files));
    assert.equal(spec.host, "db.internal");
    assert.equal(spec.port, 22);
    assert.equal(spec.username, "admin");
    assert.deepEqual(spec.keepalive, { interval: 1000, countMax: 4 });
    assert.equal(spec.hostKey.policy, "accept-new");
    assert.equal(spec.hostKey.knownHostsFile, "/home/op/.ssh/known_hosts", "the schema's default, the config has none for db");
    assert.deepEqual(spec.auth, { privateKeyFile: "/home/op/.ssh/id_db" });
  });

  it("manifest jump hosts win over ProxyJump, and may be aliases themselves", () => {
    const spec = specOf(load("  host: db\n  sshConfig: true\n  jump:\n    - {host: bastion, port: 2222}\n", files));
    assert.deepEqual(spec.jump?.map((hop) => `${hop.username}@${hop.host}:${hop.port}`), ["jump@bastion.example.com:2222"]);
  });

  const refusals: Array<{ name: string; config: string; host?: string; error: string }> = [
    {
      name: "ProxyCommand, with file and line",
      config: "Host a\n  HostName a.example\n\nHost *\n  ProxyCommand nc %h %p\n",
      error: "t.yaml:6:14: spec.sshConfig: /home/op/.ssh/config:5: ProxyCommand is not supported (tunnelctl runs no commands: use ProxyJump or spec.jump)",
    },
    {
      name: "ProxyCommand in an Include, with the included file's line",
      config: "Include extra\nHost a\n  HostName a.example\n",
      error: "t.yaml:6:14: spec.sshConfig: /home/op/.ssh/extra:2: ProxyCommand is not supported (tunnelctl runs no commands: use ProxyJump or spec.jump)",
    },
    {
      name: "Match exec anywhere",
      config: "Host a\n  HostName a.example\nMatch exec \"test -f /x\"\n  User x\n",
      error: "t.yaml:6:14: spec.sshConfig: /home/op/.ssh/config:3: Match exec is not supported (tunnelctl runs no commands)",
    },
    {
      name: "CertificateFile",
      config: "Host a\n  CertificateFile ~/.ssh/id-cert.pub\n",
      error: "t.yaml:6:14: spec.sshConfig: /home/op/.ssh/config:2: CertificateFile is not supported (certificate authentication is not supported yet: use a key)",
    },
    {
      name: "RemoteCommand",
      config: "Host a\n  RemoteCommand top\n",
      error: "t.yaml:6:14: spec.sshConfig: /home/op/.ssh/config:2: RemoteCommand is not supported (tunnelctl opens no shell or command on the server)",
    },
    {
      name: "a ProxyJump loop",
      config: "Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n",
      error: "t.yaml:6:14: spec.sshConfig: /home/op/.ssh/config:4: ProxyJump loop: a → b → a",
    },
    {
      name: "a typo in an alias",
      config: "Host a\n  HostName a.example\nHost *\n  User x\n",
      host: "aa",
      error: 't.yaml:6:14: spec.sshConfig: /home/op/.ssh/config: "aa" is not a Host alias here and not a host name (its aliases: a)',
    },
    {
      name: "a token tunnelctl does not know",
      config: "Host a\n  IdentityFile ~/.ssh/%C\n",
      error: "t.yaml:6:14: spec.sshConfig: /home/op/.ssh/config:2: identityfile ~/.ssh/%C: token %C is not supported (supported: %h %n %p %r %u %d %%)",
    },
    {
      name: "a config that is not there",
      config: "",
      error: "t.yaml:6:14: spec.sshConfig: /home/op/.ssh/config: cannot read: ENOENT",
    },
  ];
  for (const { name, config, host, error } of refusals) {
    it(`refuses ${name}`, () => {
      const fs: Record<string, string> = config === "" ? {} : { "/home/op/.ssh/config": config, "/home/op/.ssh/extra": "Host *\n  ProxyCommand nc %h %p\n" };
      const result = load(`  host: ${host ?? "a"}\n  sshConfig: true\n`, fs);
      assert.deepEqual(result.errors.map(String), [error]);
      assert.ok(result.documents[0]?.sshConfig?.reads.some((read) => read.path === "/home/op/.ssh/config"), "the config is a dependency even when it fails");
    });
  }

  it("ProxyJump before ProxyCommand wins (whichever comes first), and ProxyCommand none is nothing", () => {
    // The hop is read through the config too (as `ssh -J` does): it needs its own ProxyJump none.
    const config = "Host a\n  HostName a.example\n  ProxyJump b.example\nHost b.example\n  ProxyJump none\nHost *\n  ProxyCommand nc %h %p\n";
    assert.deepEqual(specOf(load("  host: a\n  sshConfig: true\n", { "/home/op/.ssh/config": config })).jump?.map((h) => h.host), ["b.example"]);
    const none = "Host a\n  ProxyCommand none\n  IdentityFile ~/k\n";
    assert.equal(specOf(load("  host: a\n  sshConfig: true\n", { "/home/op/.ssh/config": none })).jump, undefined);
  });

  it("without sshConfig, username and auth stay required (and sshConfig: false is no config)", () => {
    assert.deepEqual(load("  host: a\n", {}).errors.map(String), ['t.yaml:5:3: spec: missing required field "username"', 't.yaml:5:3: spec: missing required field "auth"']);
    assert.deepEqual(load("  host: a\n  sshConfig: false\n", {}).errors.map(String), ['t.yaml:5:3: spec: missing required field "username"', 't.yaml:5:3: spec: missing required field "auth"']);
  });

  it("a relative sshConfig path is the manifest folder's", () => {
    const result = load("  host: a\n  sshConfig: ssh/config\n", { "/srv/m/ssh/config": "Host a\n  HostName a.example\n  IdentityFile /k\n" });
    assert.equal(specOf(result).host, "a.example");
    assert.deepEqual(result.documents[0]?.sshConfig?.reads.map((read) => read.path), ["/srv/m/ssh/config"]);
  });
});

describe("ssh_config pieces", () => {
  const tokens = { host: "db.internal", alias: "db", port: 2200, user: "deploy", localUser: "op", homeDir: "/home/op" };
  const expansions: Array<[string, string]> = [
    ["~/.ssh/id_%h", "/home/op/.ssh/id_db.internal"],
    ["%d/keys/%n-%r@%p", "/home/op/keys/db-deploy@2200"],
    ["/k/%u%%", "/k/op%"],
    ["~", "/home/op"],
  ];
  for (const [value, want] of expansions) test(`expand ${value}`, () => assert.equal(expandTokens(value, tokens), want));
  test("an unknown token is an error", () => assert.throws(() => expandTokens("%C", tokens), /token %C is not supported/));
  test("~user is an error", () => assert.throws(() => expandTokens("~root/k", tokens), /~user is not supported/));

  const jumps: Array<[string, unknown]> = [
    ["bastion", [{ host: "bastion" }]],
    ["jump@bastion:2222,db", [{ host: "bastion", user: "jump", port: 2222 }, { host: "db" }]],
    ["ssh://u@[::1]:22", [{ host: "::1", user: "u", port: 22 }]],
    ["none", []],
  ];
  for (const [value, want] of jumps) test(`ProxyJump ${value}`, () => assert.deepEqual(parseProxyJump(value), want));
  test("ProxyJump with a port out of range", () => assert.throws(() => parseProxyJump("b:70000"), /out of range/));

  const policies: Array<[string, string | undefined]> = [["yes", "strict"], ["ask", "strict"], ["accept-new", "accept-new"], ["no", "insecure-accept-any"], ["off", "insecure-accept-any"], ["maybe", undefined]];
  for (const [value, want] of policies) test(`StrictHostKeyChecking ${value}`, () => assert.equal(hostKeyPolicy(value), want));
});
