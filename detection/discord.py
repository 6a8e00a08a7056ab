"""The `discord` detection method: each reading judged against the sensor's own recent past, no baseline.

The default for new sensors (docs/detection.md, "Methods"), chosen by measurement on real labeled series (the NAB
development set: NAB standard score 77.16, mean window F1 0.774, no alarm on its series without anomalies; the
baseline method scores far below, docs/detection.md "Quality"). Numbers in, numbers out: no database, no Django.

Per reading x_t the detector returns a LEVEL and a SCORE:

- level = max over the three parts below of 120 × (the part's statistic / its threshold), each term clipped to
  [0, LEVEL_CAP]. A part contributes only once it is defined. level ≥ 120 is exactly "some part flags" (so the
  default warning level, 120, flags what the parts flag), 200 is clearly beyond a threshold. NaN (status
  `undefined`): no part is defined yet, the first EXT_MIN readings.
- score = the nearest-neighbour distance of the sensor's window m (part 2), in the sensor's units, for display.

The three parts (counted in readings; timestamps serve only to find gaps)
-------------------------------------------------------------------------
1. E, "new extreme" (spikes, level breaks). The past range is that of the last EXT_NB complete blocks of EXT_BLOCK
   readings plus the current partial block (the previous 3,000 to 3,199 readings), kept as one max and min per
   block. r_t = max(x_t - max, min - x_t) / (max - min); it flags when r_t ≥ EXT_EPS: the reading leaves the recent
   range by 5 % of that range. A constant past gives r = infinity for any other value.
   Why: a spike or a break leaves the range the sensor has shown for days; a sustained level shift stops alarming
   at once, because its readings enter the range.
2. L, "likelihood of matrix-profile scores" (a change of shape or of noise). For the sensor's window m and a short
   one (m/4, at least 4): s_t = the Euclidean distance (not z-normalized) of the newest subsequence to its nearest
   neighbour among the subsequences of the last MP_H values of the segment (the left matrix profile, exclusion
   zone m/2). a_t = the mean of the last LIK_SHORT scores. Its history is the short means of the rows before the
   newest LIK_SHORT, over the last LIK_NB complete blocks of LIK_BLOCK rows plus the current partial block (3,000
   to 3,199 rows), kept as (count, mean, M2) per block and merged with Chan's formula (numerically stable, no
   drift). z_t = (a_t - mean) / std; it flags when the larger z of the two windows is ≥ LIK_Z, then stays silent
   for LIK_SUPP rows (one alarm per episode, not one per reading).
   Why: an unusual shape has no close neighbour in the recent history, so its distance is large next to the
   distances seen recently; a new normal finds neighbours after about 1.5 m readings and enters the statistics.
   Non-normalized distances, because z-normalized ones scored far lower on the real series (13.9 against 59.5 for
   this part alone): they erase exactly the level and amplitude changes that real anomalies show.
3. B, "day-scale block novelty" (a missing or altered daily cycle). Means of blocks of BLK_F readings, BLK_F being
   a twelfth of a day of the sensor's own readings (24 at 5-minute readings; its usual step from its first NSTEPS
   steps); the left matrix profile (non-normalized) of BLK_M consecutive blocks (one day) over the last BLK_H block
   means, evaluated once per block: it flags when the block score is at least
   BLK_C × the largest earlier one over the last BLK_NG groups of BLK_G scores and the current partial group
   (125 to 129 scores, about ten days). Scores count once two days of readings have been seen (before, every day is
   "new"), and it needs BLK_MIN earlier scores.
   Why: a day that looks like no day of the last ten scores well above every earlier day.

Gaps: a step longer than GAP × the median of the last NSTEPS positive steps starts a new segment: the raw history
searched by part 2 is dropped (no subsequence spans the pause), so its score is undefined for the next m + m/2 - 1
readings; the ranges, the score statistics, the block series and their references are kept. Repeated or uneven
timestamps need nothing else: everything counts readings, not seconds.

Units and offsets: r_t, z_t and the block ratio are ratios of differences, so multiplying a series by 1,000 and
adding 10^6 changes no status; values are stored relative to the sensor's first reading to limit rounding.

Why MP_H = 900 (the raw history is most of the state): only part 2 depends on it. On the development set, MP_H
1000 / 900 / 800 / 600 / 500 gave NAB 76.52 / 76.48 / 75.90 / 76.10 / 75.52 and window F1 0.774 / 0.774 / 0.742 /
0.747 / 0.718: with a shorter history more normal shapes lack a close neighbour. 900 (three days at 5 minutes) is
the shortest that keeps the longer history's figures.

State: STATE_FLOATS (1,277) float64 per sensor (10,216 bytes), fixed size (STATE_LAYOUT); integers are stored as
floats (exact below 2**53). Feeding in any chunking gives the same levels as feeding all at once, also with the
state round-tripped through bytes, so any worker continues any sensor exactly. Work per reading: two bounded
nearest-neighbour searches (numba-compiled, early abandoning seeded with the previous neighbour's successor), the
rest O(1) amortized.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

# ---- parameters (one set for every sensor) ----
EXT_BLOCK, EXT_NB, EXT_EPS, EXT_MIN = 200, 15, 0.05, 50
MP_H = 900
WINDOW_MIN, WINDOW_MAX = 4, MP_H // 3  # the sensor's window m: a subsequence and its neighbours fit the history
LIK_SHORT, LIK_BLOCK, LIK_NB, LIK_Z, LIK_SUPP, LIK_MIN = 10, 200, 15, 4.25, 100, 100
LIK_REL_VAR = 1e-12  # a variance below 1e-12 × mean² (std < 1e-6 of the mean) is rounding, not spread
BLK_M, BLK_H, BLK_C, BLK_MIN = 12, 125, 1.5, 10
# The day part's block size BLK_F is the sensor's own: a day of its readings, DAY / (BLK_M × its usual step),
# decided once from the first NSTEPS steps (24 for 5-minute readings, 2 for hourly ones, 7,200 for one a second);
# without timestamps (or with fewer than GAP_MIN_STEPS distinct ones by reading BLK_DECIDE) 5-minute readings.
DAY_SECONDS, BLK_F_DEFAULT, BLK_F_MAX, BLK_DECIDE = 86_400.0, 24, 86_400 // 12, 128
BLK_G, BLK_NG = 5, 25  # block scores are remembered as the max of each group of BLK_G, for BLK_NG groups
# BLK_MIN >= BLK_G: part 3 compares with at least one complete group of scores.
GAP, NSTEPS, GAP_MIN_STEPS = 10.0, 32, 8
LEVEL_FLAG, LEVEL_CAP = 120.0, 1e9
NM = 2  # part 2 runs on two windows: a short one, then the sensor's window m (whose distance is the score)
_SCORE_Q = 1

# ---- scalar slots of state["sc"] ----
S_N = 0  # readings seen
S_OFF = 1  # the first reading (values are stored relative to it)
S_HAVE_T = 2  # 1 once a timestamp has been seen
S_TLAST = 3  # the last timestamp
S_NST = 4  # positive time steps seen (ring position of "steps")
S_SEG = 5  # readings in the current segment (since the last gap)
S_EMAX_P, S_EMIN_P = 6, 7  # E: max/min of the current partial block
S_EMAX, S_EMIN = 8, 9  # E: max/min over the complete blocks in the ring
S_LLAST = 10  # L: reading number of the last L flag
S_BSUM = 11  # B: sum of the current partial block of BLK_F readings
S_BN = 12  # B: block means seen
S_BSN = 13  # B: block scores counted
S_BGMAX_P = 14  # B: max of the current partial group of block scores
S_BGMAX = 15  # B: max over the complete groups in the ring
S_LIK = 16  # L, per m (K_LIK slots each):
L_CNT, L_HINT, L_PN, L_PMEAN, L_PM2, L_CN, L_CMEAN, L_CM2 = range(8)
# consecutive defined scores; start+1 of the previous nearest neighbour (reading number, -1 none);
# (count, mean, M2) of the partial block; (count, mean, M2) merged over the complete blocks in the ring
K_LIK = 8
S_BF = S_LIK + K_LIK * NM  # B: block size in readings (0: not decided yet)
S_BCNT = S_BF + 1  # B: readings in the current partial block
S_BROWS = S_BF + 2  # B: readings since the block size was decided
NSC = S_BF + 3

STATE_LAYOUT = {
    "hist": (MP_H,),  # the last MP_H values (relative to S_OFF), oldest first, right-aligned
    "ext": (2, EXT_NB),  # E: per complete block of EXT_BLOCK readings: max (row 0), min (row 1); ring
    "lik_s": (NM, LIK_SHORT),  # L: ring of the last LIK_SHORT scores per m
    "lik_a": (NM, LIK_SHORT),  # L: delay line of the last LIK_SHORT short means per m (NaN: undefined)
    "lik_b": (NM, LIK_NB, 3),  # L: per complete block of LIK_BLOCK rows: count, mean, M2 of the short means; ring
    "blk": (BLK_H,),  # B: the last BLK_H block means, oldest first, right-aligned
    "blk_g": (BLK_NG,),  # B: max block score per complete group of BLK_G scores; ring
    "steps": (NSTEPS,),  # ring of the last NSTEPS positive time steps
    "sc": (NSC,),  # scalars (slots above)
}
STATE_FLOATS = sum(int(np.prod(s)) for s in STATE_LAYOUT.values())


def windows_of(m: int) -> np.ndarray:
    """Part 2's two windows for the sensor's window m: m/4 (at least 4), and m."""
    if not WINDOW_MIN <= m <= WINDOW_MAX:
        raise ValueError(f"the window m must be between {WINDOW_MIN} and {WINDOW_MAX}, not {m}")
    return np.array([max(WINDOW_MIN, m // 4), m], dtype=np.int64)


def new_state() -> dict[str, np.ndarray]:
    """A detector that has seen nothing."""
    st = {k: np.zeros(shape) for k, shape in STATE_LAYOUT.items()}
    st["sc"][S_LLAST] = -1e9
    for q in range(NM):
        st["sc"][S_LIK + K_LIK * q + L_HINT] = -1.0
    return st


def state_to_vector(state: dict[str, np.ndarray]) -> np.ndarray:
    """All arrays, in STATE_LAYOUT order, as one float64 vector (stored as little-endian bytes)."""
    return np.concatenate([state[k].ravel() for k in STATE_LAYOUT])


def state_from_vector(vector: np.ndarray) -> dict[str, np.ndarray]:
    """The inverse of `state_to_vector`: writable native arrays shaped like STATE_LAYOUT."""
    flat = np.asarray(vector, dtype=np.float64)
    if flat.size != STATE_FLOATS:
        raise ValueError(f"a state holds {STATE_FLOATS} floats, not {flat.size}")
    st, i = {}, 0
    for k, shape in STATE_LAYOUT.items():
        size = int(np.prod(shape))
        st[k] = flat[i : i + size].copy().reshape(shape)
        i += size
    return st


@numba.njit(cache=True)
def _nn(buf: np.ndarray, end: int, avail: int, m: int, excl: int, hint: int) -> tuple[float, int]:
    """Distance of the m-subsequence ending at buf[end] to its nearest neighbour among the subsequences that lie
    in the last `avail` values up to buf[end] and start at least `excl` before it, and that neighbour's start.
    `hint` (or -1): a start tried first, so that early abandoning cuts the scan short; the value is exact."""
    start = end - m + 1
    lo = end - avail + 1
    hi = start - excl
    if start < lo or hi < lo:
        return np.nan, -1
    best = np.inf
    bj = -1
    if lo <= hint <= hi:
        tot = 0.0
        for k in range(m):
            d = buf[hint + k] - buf[start + k]
            tot += d * d
        best = tot
        bj = hint
    for j in range(lo, hi + 1):
        tot = 0.0
        for k in range(m):
            d = buf[j + k] - buf[start + k]
            tot += d * d
            if tot >= best:
                break
        if tot < best:
            best = tot
            bj = j
    return math.sqrt(best), bj


@numba.njit(cache=True)
def _level(stat: float, thr: float) -> float:
    """120 × stat / thr, clipped to [0, LEVEL_CAP], with level >= LEVEL_FLAG exactly when stat >= thr."""
    lv = LEVEL_FLAG * (stat / thr)
    lv = max(lv, LEVEL_FLAG) if stat >= thr else min(lv, np.nextafter(LEVEL_FLAG, 0.0))
    if not lv < LEVEL_CAP:  # also +inf
        lv = LEVEL_CAP
    return max(lv, 0.0)


@numba.njit(cache=True)
def _merge(na: float, ma: float, m2a: float, nb: float, mb: float, m2b: float) -> tuple[float, float, float]:
    """Chan et al.'s merge of two (count, mean, M2) summaries."""
    n = na + nb
    if n == 0:
        return 0.0, 0.0, 0.0
    d = mb - ma
    return n, ma + d * nb / n, m2a + m2b + d * d * na * nb / n


@numba.njit(cache=True)
def _feed(
    values: np.ndarray,
    times: np.ndarray,
    hist: np.ndarray,
    ext: np.ndarray,
    lik_s: np.ndarray,
    lik_a: np.ndarray,
    lik_b: np.ndarray,
    blk: np.ndarray,
    blk_g: np.ndarray,
    steps: np.ndarray,
    sc: np.ndarray,
    ms: np.ndarray,
    levels: np.ndarray,
    scores: np.ndarray,
) -> None:
    nv = len(values)
    # contiguous working copies: raw history + this call's values, block means + this call's blocks
    w = np.empty(MP_H + nv)
    w[:MP_H] = hist
    bw = np.empty(BLK_H + nv + 1)
    bw[:BLK_H] = blk
    bend = BLK_H - 1  # index of the newest block mean in bw
    for t in range(nv):
        # ---- gaps: a step > GAP × median of the last NSTEPS positive steps starts a new segment ----
        tt = times[t]
        if not np.isnan(tt):
            if sc[S_HAVE_T] > 0:
                d = tt - sc[S_TLAST]
                nst = int(sc[S_NST])
                if nst >= GAP_MIN_STEPS and d > GAP * np.median(steps[: min(nst, NSTEPS)]):
                    sc[S_SEG] = 0.0
                if d > 0:
                    steps[nst % NSTEPS] = d
                    sc[S_NST] = nst + 1
            sc[S_TLAST] = tt
            sc[S_HAVE_T] = 1.0
        n = int(sc[S_N])  # reading number of x
        if n == 0:
            sc[S_OFF] = values[t]
        x = values[t] - sc[S_OFF]
        level = np.nan

        # ---- 1. E: new extreme against the block ranges (before x enters them) ----
        if n >= EXT_MIN:
            nfull = n // EXT_BLOCK  # complete blocks seen
            part = n % EXT_BLOCK  # readings in the partial block
            if nfull == 0:
                mx, mn = sc[S_EMAX_P], sc[S_EMIN_P]
            elif part == 0:
                mx, mn = sc[S_EMAX], sc[S_EMIN]
            else:
                mx, mn = max(sc[S_EMAX], sc[S_EMAX_P]), min(sc[S_EMIN], sc[S_EMIN_P])
            rg = mx - mn
            lv = _level(max(x - mx, mn - x) / rg, EXT_EPS) if rg > 0 else LEVEL_CAP if x != mx else 0.0
            level = lv
        if n % EXT_BLOCK == 0:
            sc[S_EMAX_P] = x
            sc[S_EMIN_P] = x
        else:
            sc[S_EMAX_P] = max(sc[S_EMAX_P], x)
            sc[S_EMIN_P] = min(sc[S_EMIN_P], x)
        if (n + 1) % EXT_BLOCK == 0:  # the block is complete: into the ring, refresh the ring's range
            nb = (n + 1) // EXT_BLOCK
            ext[0, (nb - 1) % EXT_NB] = sc[S_EMAX_P]
            ext[1, (nb - 1) % EXT_NB] = sc[S_EMIN_P]
            k = min(nb, EXT_NB)
            sc[S_EMAX] = ext[0, :k].max()
            sc[S_EMIN] = ext[1, :k].min()

        # ---- 2. L: likelihood of the matrix-profile scores ----
        end = MP_H + t
        w[end] = x
        sc[S_N] = n + 1
        sc[S_SEG] += 1
        avail = min(int(sc[S_SEG]), n + 1, MP_H)
        zmax = np.nan
        for q in range(len(ms)):
            m = ms[q]
            b = S_LIK + K_LIK * q
            hint = -1
            if sc[b + L_HINT] >= 0:
                hint = end - (n - int(sc[b + L_HINT]))
            s, bj = _nn(w, end, avail, m, max(1, m // 2), hint)
            sc[b + L_HINT] = n - (end - bj) + 1 if bj >= 0 else -1.0
            if q == _SCORE_Q:
                scores[t] = s
            a = np.nan
            if np.isnan(s):
                sc[b + L_CNT] = 0.0
            else:
                cnt = int(sc[b + L_CNT])
                lik_s[q, cnt % LIK_SHORT] = s
                sc[b + L_CNT] = cnt + 1
                if cnt + 1 >= LIK_SHORT:
                    a = lik_s[q].sum() / LIK_SHORT
            # the short mean of row n - LIK_SHORT leaves the delay line and enters the partial block
            if n >= LIK_SHORT:
                old = lik_a[q, n % LIK_SHORT]
                if not np.isnan(old):
                    pn = sc[b + L_PN] + 1
                    dlt = old - sc[b + L_PMEAN]
                    sc[b + L_PMEAN] += dlt / pn
                    sc[b + L_PM2] += dlt * (old - sc[b + L_PMEAN])
                    sc[b + L_PN] = pn
                r = n - LIK_SHORT  # the row that entered
                if (r + 1) % LIK_BLOCK == 0:  # its block is complete: into the ring, re-merge the ring
                    nb = (r + 1) // LIK_BLOCK
                    i = (nb - 1) % LIK_NB
                    lik_b[q, i, 0] = sc[b + L_PN]
                    lik_b[q, i, 1] = sc[b + L_PMEAN]
                    lik_b[q, i, 2] = sc[b + L_PM2]
                    sc[b + L_PN] = 0.0
                    sc[b + L_PMEAN] = 0.0
                    sc[b + L_PM2] = 0.0
                    cn, cmean, cm2 = 0.0, 0.0, 0.0
                    for j in range(min(nb, LIK_NB)):
                        cn, cmean, cm2 = _merge(cn, cmean, cm2, lik_b[q, j, 0], lik_b[q, j, 1], lik_b[q, j, 2])
                    sc[b + L_CN] = cn
                    sc[b + L_CMEAN] = cmean
                    sc[b + L_CM2] = cm2
            lik_a[q, n % LIK_SHORT] = a
            hn, hmean, hm2 = _merge(
                sc[b + L_CN], sc[b + L_CMEAN], sc[b + L_CM2], sc[b + L_PN], sc[b + L_PMEAN], sc[b + L_PM2]
            )
            if hn >= LIK_MIN and not np.isnan(a):
                var = hm2 / hn
                if var > 0 and var > LIK_REL_VAR * hmean * hmean:
                    z = (a - hmean) / math.sqrt(var)
                    if np.isnan(zmax) or z > zmax:
                        zmax = z
        if not np.isnan(zmax) and n - sc[S_LLAST] > LIK_SUPP:  # outside the refractory period
            lv = _level(zmax, LIK_Z)
            if zmax >= LIK_Z:
                sc[S_LLAST] = n
            level = lv if np.isnan(level) else max(level, lv)

        # ---- 3. B: day-scale block novelty, once per block of BLK_F readings (a day is BLK_M blocks) ----
        if sc[S_BF] == 0:
            nst = int(sc[S_NST])
            if nst >= NSTEPS or n + 1 >= BLK_DECIDE:
                if nst >= GAP_MIN_STEPS:
                    per_day = DAY_SECONDS / (BLK_M * np.median(steps[: min(nst, NSTEPS)]))
                    sc[S_BF] = min(BLK_F_MAX, max(1.0, float(round(per_day))))
                else:
                    sc[S_BF] = BLK_F_DEFAULT
        blk_f = sc[S_BF]
        if blk_f > 0:
            sc[S_BSUM] += x
            sc[S_BCNT] += 1
            sc[S_BROWS] += 1
        if blk_f > 0 and sc[S_BCNT] >= blk_f:
            bend += 1
            bw[bend] = sc[S_BSUM] / blk_f
            sc[S_BSUM] = 0.0
            sc[S_BCNT] = 0.0
            sc[S_BN] += 1
            bs, _ = _nn(bw, bend, int(min(sc[S_BN], BLK_H)), BLK_M, BLK_M // 2, -1)
            if not np.isnan(bs) and sc[S_BROWS] > 2 * blk_f * BLK_M:
                k = int(sc[S_BSN])  # earlier scores
                if k >= BLK_MIN:  # at least one complete group (BLK_MIN >= BLK_G)
                    mx = sc[S_BGMAX] if k % BLK_G == 0 else max(sc[S_BGMAX], sc[S_BGMAX_P])
                    lv = _level(bs / mx, BLK_C) if mx > 0 else (LEVEL_CAP if bs > 0 else 0.0)
                    level = lv if np.isnan(level) else max(level, lv)
                sc[S_BGMAX_P] = bs if k % BLK_G == 0 else max(sc[S_BGMAX_P], bs)
                sc[S_BSN] = k + 1
                if (k + 1) % BLK_G == 0:  # the group is complete: into the ring, refresh the ring's max
                    g = (k + 1) // BLK_G
                    blk_g[(g - 1) % BLK_NG] = sc[S_BGMAX_P]
                    sc[S_BGMAX] = blk_g[: min(g, BLK_NG)].max()
        levels[t] = level
    hist[:] = w[nv : nv + MP_H]
    blk[:] = bw[bend - BLK_H + 1 : bend + 1]


class DiscordDetector:
    """One sensor's detector for the `discord` method, with window m (default DETECTION_DISCORD_WINDOW).

    `state_vector()` is its whole state as one float64 vector (stored in `DetectorState.method_state`), and
    `DiscordDetector.from_vector(m, vector)` continues exactly where it left off. `warning` and `critical` are the
    sensor's thresholds on the level, set by whoever judges the levels (the detection service); they are not state.
    """

    def __init__(self, m: int, state: dict[str, np.ndarray] | None = None, *, learning: int = 0) -> None:
        self.m = m
        self.learning = learning
        self.windows = windows_of(m)
        self.state = new_state() if state is None else state
        self.warning = LEVEL_FLAG
        self.critical = 200.0

    @classmethod
    def from_vector(cls, m: int, vector: np.ndarray, *, learning: int = 0) -> DiscordDetector:
        """The detector `state_vector()` came from; an empty vector gives a new detector."""
        if len(vector) == 0:
            return cls(m, learning=learning)
        return cls(m, state_from_vector(vector), learning=learning)

    def state_vector(self) -> np.ndarray:
        return state_to_vector(self.state)

    @property
    def seen(self) -> int:
        """Readings fed since the detector was made."""
        return int(self.state["sc"][S_N])

    @property
    def values(self) -> np.ndarray:
        """The sensor's most recent values (up to MP_H), oldest first: what another method starts from after a
        switch of method."""
        count = min(self.seen, MP_H)
        if count == 0:
            return np.empty(0)
        recent: np.ndarray = self.state["hist"][MP_H - count :] + self.state["sc"][S_OFF]
        return recent

    def feed_arrays(
        self, values: npt.ArrayLike, epoch_seconds: npt.ArrayLike | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(levels, scores) for `values` (finite floats, in time order), NaN where undefined; `epoch_seconds`
        (the same length, or None) serve only to find gaps. The state is updated in place."""
        v = np.ascontiguousarray(values, dtype=np.float64)
        if v.ndim != 1 or not np.all(np.isfinite(v)):
            raise ValueError("a detector takes a 1-D series of finite values")
        if epoch_seconds is None:
            t = np.full(len(v), np.nan)
        else:
            t = np.ascontiguousarray(epoch_seconds, dtype=np.float64)
            if t.shape != v.shape:
                raise ValueError("values and timestamps differ in length")
        s = self.state
        seen = self.seen
        levels = np.empty(len(v))
        scores = np.empty(len(v))
        if len(v):
            _feed(
                v, t, s["hist"], s["ext"], s["lik_s"], s["lik_a"], s["lik_b"], s["blk"], s["blk_g"], s["steps"],
                s["sc"], self.windows, levels, scores,
            )  # fmt: skip
        if seen < self.learning:  # the sensor's first readings: learning what is normal, no judgement yet
            levels[: self.learning - seen] = np.nan
        return levels, scores


def warm() -> None:
    """Compile (or load from NUMBA_CACHE_DIR) the detector's functions now, once per process."""
    series = np.sin(np.arange(700) / 7.0)
    DiscordDetector(16).feed_arrays(series, np.arange(700) * 60.0)
