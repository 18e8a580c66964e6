#!/usr/bin/python3
"""bench/kv failover driver: steady writes against every member, SIGKILL the leader.

Usage: failover.py SYSTEM LEADER_PID URL [URL...]
  SYSTEM      meridian | etcd
  LEADER_PID  the leader's process id (killed with SIGKILL after the warm-up)
  URL         http://127.0.0.1:PORT of every member, the leader's included

WORKERS writers per member each send one write at a time over a keep-alive connection
(Meridian `PUT /v1/kv/failover/<n>`, etcd `POST /v3/kv/put`), with a per-request timeout of
TIMEOUT seconds; a failed write (error status, refused or reset connection, timeout) is
recorded and the writer reconnects after a 20 ms pause. Every write's start, end, member
and outcome is recorded. After WARMUP seconds the leader is killed; the run ends AFTER
seconds after the first write that was sent after the kill succeeded on every surviving
member, or at DEADLINE.

Prints one JSON object on stdout:
  recovery_s      kill -> first acknowledged write that was sent after the kill
  all_members_s   kill -> every surviving member has acknowledged such a write
  gap_s           longest stretch around the kill with no acknowledged write at all
  before_wps / after_wps   acknowledged writes/s in the warm-up and in the last AFTER s
  failed          failed writes after the kill (by cause)
  timeline        acknowledged and failed writes per 100 ms bucket, relative to the kill
Progress goes to stderr.
"""

import asyncio
import json
import os
import signal
import sys
import time

import aiohttp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import benchlib as bl  # noqa: E402

WORKERS = int(os.environ.get("WORKERS", "4"))
WARMUP = float(os.environ.get("WARMUP", "3"))
AFTER = float(os.environ.get("AFTER", "2"))
DEADLINE = float(os.environ.get("DEADLINE", "40"))
TIMEOUT = float(os.environ.get("TIMEOUT", "2"))
VALUE = "0123456789abcdef" * 8


class Run:
    def __init__(self, system, urls):
        self.system = system
        self.urls = urls
        self.records = []  # (start, end, member index, ok, cause)
        self.counter = 0
        self.stop = False
        self.kill_at = None
        self.dead = None  # member index of the killed leader

    def request(self, session, url):
        self.counter += 1
        key = f"failover/{self.counter}"
        if self.system == "meridian":
            return session.put(f"{url}/v1/kv/{key}", data=VALUE), "true"
        body = json.dumps({"key": bl.b64(key), "value": bl.b64(VALUE)})
        return (session.post(f"{url}/v3/kv/put", data=body,
                             headers={"Content-Type": "application/json"}), '"header"')

    async def writer(self, member):
        url = self.urls[member]
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        conn = aiohttp.TCPConnector(limit=1, force_close=False)
        async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
            while not self.stop:
                start = time.monotonic()
                ok, cause = False, ""
                try:
                    req, want = self.request(session, url)
                    async with req as resp:
                        text = await resp.text()
                        ok = 200 <= resp.status < 300 and want in text
                        if not ok:
                            cause = f"status {resp.status}"
                except asyncio.TimeoutError:
                    cause = "timeout"
                except aiohttp.ClientError as e:
                    cause = type(e).__name__
                end = time.monotonic()
                self.records.append((start, end, member, ok, cause))
                if not ok:
                    await asyncio.sleep(0.02)

    async def main(self, leader_pid):
        tasks = [asyncio.create_task(self.writer(m))
                 for m in range(len(self.urls)) for _ in range(WORKERS)]
        await asyncio.sleep(WARMUP)
        warm = [r for r in self.records if r[3]]
        if not warm:
            raise SystemExit(f"{self.system}: no write succeeded during the warm-up")
        self.kill_at = time.monotonic()
        os.kill(leader_pid, signal.SIGKILL)
        bl.log(f"{self.system}: SIGKILL leader pid {leader_pid} after {len(warm)} writes")
        end_by = self.kill_at + DEADLINE
        done_at = None
        while time.monotonic() < end_by:
            await asyncio.sleep(0.05)
            if done_at is None and self.recovered_members() >= len(self.urls) - 1:
                done_at = time.monotonic()
                bl.log(f"{self.system}: writes succeed again on every survivor "
                       f"({done_at - self.kill_at:.2f}s after the kill)")
            if done_at is not None and time.monotonic() >= done_at + AFTER:
                break
        self.stop = True
        await asyncio.gather(*tasks, return_exceptions=True)

    def recovered_members(self):
        return len({r[2] for r in self.records if r[3] and r[0] >= self.kill_at})

    def result(self):
        k = self.kill_at
        after = [r for r in self.records if r[0] >= k]
        ok_after = sorted(r[1] for r in after if r[3])
        by_member = {}
        for r in after:
            if r[3]:
                by_member[r[2]] = min(by_member.get(r[2], r[1]), r[1])
        survivors = len(self.urls) - 1
        # Members that answered writes sent after the kill: the dead one never does.
        recovery = ok_after[0] - k if ok_after else None
        all_members = (max(by_member.values()) - k
                       if len(by_member) >= survivors else None)
        # Longest stretch without an acknowledgement, from the last one before the kill.
        acks = sorted(r[1] for r in self.records if r[3])
        before = [t for t in acks if t <= k]
        gap = None
        if ok_after:
            gap = ok_after[0] - (before[-1] if before else k)
        warm = [r for r in self.records if r[3] and r[1] <= k]
        first = min(r[0] for r in self.records)
        end = max(r[1] for r in self.records)
        tail = [r for r in self.records if r[3] and r[1] >= end - AFTER]
        causes = {}
        for r in after:
            if not r[3]:
                causes[r[4]] = causes.get(r[4], 0) + 1
        timeline = {}
        for r in self.records:
            b = round((r[1] - k) // 0.1 * 0.1, 1)
            ok, bad = timeline.get(b, (0, 0))
            timeline[b] = (ok + 1, bad) if r[3] else (ok, bad + 1)
        return {
            "system": self.system,
            "members": len(self.urls),
            "writers": WORKERS * len(self.urls),
            "recovery_s": round(recovery, 3) if recovery is not None else None,
            "all_members_s": round(all_members, 3) if all_members is not None else None,
            "gap_s": round(gap, 3) if gap is not None else None,
            "before_wps": round(len(warm) / max(k - first, 1e-9), 1),
            "after_wps": round(len(tail) / AFTER, 1),
            "failed": causes,
            "timeline": [[b, ok, bad] for b, (ok, bad) in sorted(timeline.items())],
        }


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    system, pid, urls = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    run = Run(system, urls)
    asyncio.run(run.main(pid))
    out = run.result()
    bl.log(f"{system}: recovery {out['recovery_s']}s, all survivors {out['all_members_s']}s, "
           f"no ack for {out['gap_s']}s, failed writes after the kill {out['failed']}")
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
