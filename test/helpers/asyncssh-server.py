# A small asyncssh SSH server for tests: public-key auth from one authorized_keys file, local
# (direct-tcpip) and remote (tcpip-forward) port forwarding allowed, no shell. Prints
# "listening on 127.0.0.1 port N" once it accepts connections. Run with Debian's python3
# (python3-asyncssh).
import argparse
import asyncio
import sys

import asyncssh
from asyncssh.connection import SSHConnection
from asyncssh.constants import MSG_GLOBAL_REQUEST, MSG_UNIMPLEMENTED
from asyncssh.packet import UInt32


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host-key", action="append", required=True)
    parser.add_argument("--authorized-keys", required=True)
    parser.add_argument("--unimplemented-globals", action="store_true",
                        help="answer global requests without a handler with SSH_MSG_UNIMPLEMENTED")
    parser.add_argument("--no-remote-forwarding", action="store_true")
    parser.add_argument("--ignore-global", action="append", default=[],
                        help="never answer this global request (a server that hangs on it)")
    parser.add_argument("--delay-first-global", action="append", default=[],
                        help="NAME:SECONDS: handle the first such request that late")
    args = parser.parse_args()

    delays = {name: float(seconds) for name, seconds in (d.rsplit(":", 1) for d in args.delay_first_global)}

    if args.unimplemented_globals or args.ignore_global or delays:
        # RFC 4253 section 11.4 allows this answer to any message a server does not implement:
        # every global request but the port forwarding ones gets it (keepalive@openssh.com,
        # no-more-sessions@openssh.com, ...).
        original = SSHConnection._packet_handlers[MSG_GLOBAL_REQUEST]

        def process_global_request(self, pkttype, pktid, packet):
            start = packet._idx
            request = packet.get_string()
            if request.decode("ascii", "replace") in args.ignore_global:
                print(f"ignored {request.decode('ascii', 'replace')}", flush=True)
                return
            name = request.decode("ascii", "replace")
            print(f"global {name}", flush=True)
            if name in delays:
                delay = delays.pop(name)
                print(f"delayed {name}", flush=True)
                packet._idx = start
                asyncio.get_event_loop().call_later(delay, original, self, pkttype, pktid, packet)
                return
            if args.unimplemented_globals and request not in (b"tcpip-forward", b"cancel-tcpip-forward"):
                self.send_packet(MSG_UNIMPLEMENTED, UInt32(pktid))
                print(f"unimplemented {request.decode('ascii', 'replace')}", flush=True)
                return
            packet._idx = start
            original(self, pkttype, pktid, packet)

        SSHConnection._packet_handlers[MSG_GLOBAL_REQUEST] = process_global_request

    class Server(asyncssh.SSHServer):
        def connection_requested(self, dest_host, dest_port, orig_host, orig_port):
            return True

        def server_requested(self, listen_host, listen_port):
            return not args.no_remote_forwarding

    async def serve() -> None:
        await asyncssh.create_server(
            Server,
            "127.0.0.1",
            args.port,
            server_host_keys=args.host_key,
            authorized_client_keys=args.authorized_keys,
            allow_pty=False,
            x11_forwarding=False,
            agent_forwarding=False,
            login_timeout=30,
        )
        print(f"listening on 127.0.0.1 port {args.port}", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
