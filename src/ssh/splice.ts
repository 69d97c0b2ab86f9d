// Join a TCP socket and an SSH channel: bytes flow both ways with backpressure (pipe), half-close
// is carried across (EOF one way does not end the other), and an error on either side tears both
// down. `onClosed` runs once, when both sides are closed.
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";

export function splice(socket: Socket, channel: Duplex, onClosed: () => void): void {
  let pending = 2;
  const closedOne = (): void => {
    if (--pending === 0) onClosed();
  };
  socket.pipe(channel);
  channel.pipe(socket);
  socket.on("error", () => channel.destroy());
  channel.on("error", () => socket.destroy());
  socket.once("close", (hadError: boolean) => {
    // A reset client cannot take more bytes; a clean close already sent EOF through pipe().
    if (hadError) channel.destroy();
    else if (!channel.writableEnded) channel.end();
    closedOne();
  });
  channel.once("close", () => {
    // The channel is gone: let the socket flush what it has, then close it.
    if (!socket.destroyed) {
      if (socket.writableEnded || socket.writableFinished) socket.destroySoon();
      else socket.end(() => socket.destroy());
    }
    closedOne();
  });
}
