// Write `size` bytes of `chunk` (repeated, the last one cut) honouring backpressure; `onDone`
// once all are handed to the socket. Used by the bench client and the target server alike.
import type { Socket } from "node:net";

export function writeBulk(socket: Socket, chunk: Buffer, size: number, onDone: () => void): void {
  let left = size;
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      left -= n;
      if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
        socket.once("drain", pump);
        return;
      }
    }
    onDone();
  };
  pump();
}
