// ssh_config token expansion (ssh_config(5) "TOKENS"), pure: `%h` `%p` `%r` `%n` `%u` `%d` `%%`
// and a leading `~`. A token tunnelctl does not know is an error, never passed on as text.

export interface TokenValues {
  /** %h: the host name (after HostName). */
  host: string;
  /** %n: the name as given (the alias). */
  alias: string;
  /** %p */
  port: number;
  /** %r: the remote user. */
  user: string;
  /** %u: the local user. */
  localUser: string;
  /** %d and ~: the local home directory. */
  homeDir: string;
}

/** Expand tokens in `value`; throws an Error naming the unknown token. */
export function expandTokens(value: string, tokens: TokenValues): string {
  const expanded = value.replace(/%(.?)/g, (whole, token: string) => {
    switch (token) {
      case "%":
        return "%";
      case "h":
        return tokens.host;
      case "n":
        return tokens.alias;
      case "p":
        return String(tokens.port);
      case "r":
        return tokens.user;
      case "u":
        return tokens.localUser;
      case "d":
        return tokens.homeDir;
      default:
        throw new Error(`token ${whole === "%" ? "% at the end" : whole} is not supported (supported: %h %n %p %r %u %d %%)`);
    }
  });
  return expandTilde(expanded, tokens.homeDir);
}

/** `~` and `~/x` → the home directory; `~user` is not supported. */
export function expandTilde(value: string, homeDir: string): string {
  if (value === "~") return homeDir;
  if (value.startsWith("~/")) return `${homeDir}/${value.slice(2)}`;
  if (value.startsWith("~")) throw new Error(`${value}: ~user is not supported`);
  return value;
}
