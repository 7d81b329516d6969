// Run a MicroPython script under MicroPython's WebAssembly port (a 32-bit build) in Node.js,
// with module trees from the host copied into its filesystem. Driven by ports/micropython/wasm.py:
//
//   node wasm_run.mjs CONFIG_JSON
//   CONFIG_JSON = {"module": ".../micropython.mjs", "heapsize": 194560, "pystack": 2048,
//                  "trees": [["/host/dir", "/lib"], ...], "script": "/host/script.py",
//                  "serve": false}
//
// The script runs first. With "serve", commands then come on stdin, one a line:
//   F <hex>        a frame for the script's receive ring (see wasm.py RING_*)
//   X <name> <arg> call the script's global name(arg) (arg a string; a return value -n means
//                  n int32 results in the script's OUT array, at outaddr()); each call is a separate
//                  external call, so the port's garbage collector runs between two of them
//                  (it never collects inside one: this port grows its heap instead)
//   C              collect the garbage now (between two calls the port collects only when
//                  it has piled up: a call's gc.mem_alloc() may count earlier calls' garbage)
//   Q              quit
// and after each X the runner prints the frames the script put in its transmit ring
// (F <hex>), the heap's size as micropython.mem_info() last printed it (H <total bytes>),
// then R <the call's return value> or E <the Python exception>.
import fs from "fs";
import path from "path";
import { pathToFileURL } from "url";

const cfg = JSON.parse(process.argv[2]);
const outw = (s) => fs.writeSync(1, s + "\n");
let heapTotal = 0;
// mem_info()'s lines are the runner's, the rest is the script's stdout
const stdout = (line) => {
  const m = /^GC: total: (\d+)/.exec(line);
  if (m) { heapTotal = parseInt(m[1], 10); return; }
  if (/^stack: \d+ out of/.test(line) || /^ No\. of 1-blocks/.test(line)) return;
  outw(line);
};
const { loadMicroPython } = await import(pathToFileURL(cfg.module).href);
const mp = await loadMicroPython({ heapsize: cfg.heapsize, pystack: cfg.pystack || 2048,
                                   stdout, stderr: (l) => fs.writeSync(2, l + "\n") });

function copyTree(src, dst) {
  try { mp.FS.mkdir(dst); } catch (e) { /* exists */ }
  for (const name of fs.readdirSync(src)) {
    if (name === "__pycache__") continue;
    const s = path.join(src, name), d = dst + "/" + name;
    const st = fs.statSync(s);  // follows the symlinks of a staged tree
    if (st.isDirectory()) copyTree(s, d);
    else if (/\.(py|mpy|json)$/.test(name)) mp.FS.writeFile(d, fs.readFileSync(s));
  }
}
for (const [src, dst] of cfg.trees || []) {
  let p = "";
  for (const part of dst.split("/").filter(Boolean)) {
    p += "/" + part;
    try { mp.FS.mkdir(p); } catch (e) { /* exists */ }
  }
  copyTree(src, dst);
}

function pyError(e) {
  return String(e && e.message ? e.message : e).replace(/\n/g, "\\n");
}

try {
  mp.runPython(fs.readFileSync(cfg.script, "utf8"));
} catch (e) {
  outw("E " + pyError(e));
  process.exit(1);
}
if (!cfg.serve) process.exit(0);

// the script's rings: rings() -> "rxd rxl rxc txd txl txc depth size" (uctypes addresses);
// a ring is `depth` slots of `size` bytes, a 2-byte little-endian length per slot, and a
// control block [count, head]
const M = mp._module;
let R = null;
function rings() {
  if (R === null) {
    const f = mp.globals.get("rings");
    const a = String(f()).split(" ").map((x) => parseInt(x, 10));
    R = { rxd: a[0], rxl: a[1], rxc: a[2], txd: a[3], txl: a[4], txc: a[5], depth: a[6], size: a[7] };
  }
  return R;
}
const u8 = (addr) => M.getValue(addr, "i8") & 0xff;
function putFrame(bytes) {
  const r = rings();
  const count = u8(r.rxc), head = u8(r.rxc + 1);
  if (count >= r.depth || bytes.length > r.size) return false;  // the ring is full: lost
  const i = (head + count) % r.depth;
  const base = r.rxd + i * r.size;
  for (let k = 0; k < bytes.length; k++) M.setValue(base + k, bytes[k], "i8");
  M.setValue(r.rxl + 2 * i, bytes.length & 0xff, "i8");
  M.setValue(r.rxl + 2 * i + 1, bytes.length >> 8, "i8");
  M.setValue(r.rxc, count + 1, "i8");
  return true;
}
function drainFrames() {
  if (R === null) return;
  const r = R;
  let count = u8(r.txc), head = u8(r.txc + 1);
  while (count > 0) {
    const n = u8(r.txl + 2 * head) | (u8(r.txl + 2 * head + 1) << 8);
    const base = r.txd + head * r.size;
    const b = Buffer.alloc(n);
    for (let k = 0; k < n; k++) b[k] = u8(base + k);
    outw("F " + b.toString("hex"));
    head = (head + 1) % r.depth;
    count -= 1;
  }
  M.setValue(r.txc + 1, head, "i8");
  M.setValue(r.txc, 0, "i8");
}

// stdin, line by line, synchronously (the peer waits for each answer)
const chunk = Buffer.alloc(65536);
let pending = "";
function readLine() {
  for (;;) {
    const nl = pending.indexOf("\n");
    if (nl >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      return line;
    }
    let n;
    try {
      n = fs.readSync(0, chunk, 0, chunk.length, null);
    } catch (e) {
      if (e.code === "EAGAIN") continue;
      throw e;
    }
    if (n === 0) return null;
    pending += chunk.toString("latin1", 0, n);
  }
}

const fns = new Map();
let outAddr = null;
for (;;) {
  const line = readLine();
  if (line === null || line === "Q") break;
  if (line === "C") {
    // a full collection now: between calls the port collects only now and then
    mp.runPython("import gc\ngc.collect()");
    outw("R 0");
  } else if (line.startsWith("F ")) {
    putFrame(Buffer.from(line.slice(2), "hex"));
  } else if (line.startsWith("X ")) {
    const sp = line.indexOf(" ", 2);
    const name = sp < 0 ? line.slice(2) : line.slice(2, sp);
    const arg = sp < 0 ? "" : line.slice(sp + 1);
    let res, err = null;
    // each call from a collected heap: a0 is what is live, a run in a limited heap grows it
    // only when the live data and the call's own garbage do not fit
    mp.runPython("import gc\ngc.collect()");
    try {
      // one proxy per function for the whole run: each globals.get() would make a new one,
      // held in the port's proxy table (about 80 bytes of heap a call)
      if (!fns.has(name)) fns.set(name, mp.globals.get(name));
      res = fns.get(name)(arg);
      if (typeof res === "number" && res < 0) {
        // -n: n int32 results in the script's OUT array (outaddr())
        if (outAddr === null) outAddr = mp.globals.get("outaddr")();
        const v = [];
        for (let i = 0; i < -res; i++) v.push(M.getValue(outAddr + 4 * i, "i32"));
        res = v.join(" ");
      }
    } catch (e) {
      err = pyError(e);
    }
    drainFrames();
    outw("H " + heapTotal);
    outw(err === null ? "R " + String(res) : "E " + err);
  }
}
