package chaos

import (
	"math/rand/v2"
	"time"
)

// kill is one planned fault: SIGKILL at At (since the load began), start
// again Down later.
type kill struct {
	At   time.Duration
	Down time.Duration
}

// killSchedule spreads n kills over the middle of the load (10 % to 85 %
// of it), one in each of n equal slots at a random point, each down for a
// random time in [minDown, maxDown] that ends before the next slot begins.
func killSchedule(rng *rand.Rand, load time.Duration, n int, minDown, maxDown time.Duration) []kill {
	if n <= 0 {
		return nil
	}
	from, to := load/10, load*85/100
	slot := (to - from) / time.Duration(n)
	out := make([]kill, n)
	for i := range out {
		start := from + time.Duration(i)*slot
		down := minDown + randDuration(rng, maxDown-minDown)
		// A fault never outlasts its slot; the suite also waits for the
		// process to be ready again before the next kill.
		down = min(down, slot*9/10)
		at := start + randDuration(rng, slot-down)
		out[i] = kill{At: at, Down: down}
	}
	return out
}

func randDuration(rng *rand.Rand, d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rng.Int64N(int64(d)))
}
