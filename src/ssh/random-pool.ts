// A buffered crypto.randomFillSync for small requests. Each call to Node's randomFillSync creates
// a native job: about 1.4 µs here, whatever the size. ssh2 makes one such call per SSH packet it
// sends, to fill the packet's random padding (4 to 255 bytes, RFC 4253 §6). This version takes
// those bytes from a 4 KiB block of the same CSPRNG, refilled when it runs out. OpenSSH does the
// same with arc4random_buf, which also serves its padding from a buffered generator.
//
// Every pooled byte is handed out once, and zeroed in the block as it goes. Requests larger than
// MAX_POOLED bytes, and anything but a plain (buffer, offset, size) call, go straight to the
// wrapped function, which also does the argument checking.
import { randomFillSync as nodeRandomFillSync } from "node:crypto";

const POOL_SIZE = 4096;
/** Larger requests bypass the pool: padding is at most 255 bytes, ssh2's cookies are 16. */
export const MAX_POOLED = 256;

export interface RandomPoolStats {
  /** Requests served from the pool. */
  pooled: number;
  /** Times the pool was refilled from the wrapped function. */
  refills: number;
}

export interface PooledRandomFill {
  randomFillSync: typeof nodeRandomFillSync;
  stats(): RandomPoolStats;
}

export function createPooledRandomFill(fill: typeof nodeRandomFillSync = nodeRandomFillSync): PooledRandomFill {
  const pool = Buffer.alloc(POOL_SIZE);
  let next = POOL_SIZE;
  let pooled = 0;
  let refills = 0;
  function randomFillSync<T extends NodeJS.ArrayBufferView | ArrayBuffer>(buf: T, offset?: number, size?: number): T {
    if (
      !(buf instanceof Uint8Array) ||
      offset === undefined ||
      size === undefined ||
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(size) ||
      size < 0 ||
      size > MAX_POOLED ||
      offset < 0 ||
      offset + size > buf.length
    ) {
      return fill(buf as NodeJS.ArrayBufferView, offset, size) as T;
    }
    if (next + size > POOL_SIZE) {
      fill(pool);
      next = 0;
      refills++;
    }
    for (let i = 0; i < size; i++) {
      buf[offset + i] = pool[next + i]!;
      pool[next + i] = 0;
    }
    next += size;
    pooled++;
    return buf;
  }
  return {
    randomFillSync: randomFillSync as typeof nodeRandomFillSync,
    stats: () => ({ pooled, refills }),
  };
}
