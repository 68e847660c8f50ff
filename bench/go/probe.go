// bench/go/probe.go: the Go twin of bench/wl-probe.c (the pause probe).
package main

type pobj struct {
	next *pobj
	v    [15]uint64
}

const bucketNs = 100
const nbuckets = 1 << 20

func tag(i uint64) uint64 { return i*0x9e3779b97f4a7c15 + 1 }

func newObj(i uint64) *pobj {
	o := &pobj{}
	o.v[0] = tag(i)
	o.v[14] = tag(i) ^ 0xffff
	return o
}

func main() {
	defSlots, defSecs := 1500000.0, 10.0
	if quick() {
		defSlots, defSecs = 20000, 0.3
	}
	nslots := uint64(arg("slots", defSlots))
	secs := arg("seconds", defSecs)
	hist := make([]uint32, nbuckets)
	slots := make([]*pobj, nslots)
	for i := uint64(0); i < nslots; i++ {
		slots[i] = newObj(i)
	}
	var rng uint64 = 88172645463325252
	var iters, over1, over10 uint64
	var maxgap float64
	t0 := mono()
	prev := t0
	end := t0 + secs*1e9
	for {
		now := mono()
		gap := now - prev
		b := int(gap / bucketNs)
		if b >= nbuckets {
			b = nbuckets - 1
		}
		hist[b]++
		if gap > maxgap {
			maxgap = gap
		}
		if gap > 1e6 {
			over1++
		}
		if gap > 1e7 {
			over10++
		}
		prev = now
		if now >= end {
			break
		}
		i := wlRand(&rng) % nslots
		slots[i] = newObj(i)
		iters++
	}
	h := foldInit
	for i := uint64(0); i < nslots; i++ {
		o := slots[i]
		if o.v[0] != tag(i) || o.v[14] != tag(i)^0xffff || o.next != nil {
			die("a slot lost its object")
		}
		h = fold(h, o.v[0]^o.v[14])
	}
	var total, seen uint64
	for _, c := range hist {
		total += uint64(c)
	}
	n999, n9999 := total-total/1000, total-total/10000
	var p999, p9999 float64
	for b, c := range hist {
		seen += uint64(c)
		if p999 == 0 && seen >= n999 {
			p999 = float64(b+1) * bucketNs
		}
		if p9999 == 0 && seen >= n9999 {
			p9999 = float64(b+1) * bucketNs
			break
		}
	}
	figure("gap_max_ms", maxgap/1e6)
	figure("gap_p999_ms", p999/1e6)
	figure("gap_p9999_ms", p9999/1e6)
	figure("gaps_over_1ms", float64(over1))
	figure("gaps_over_10ms", float64(over10))
	figure("mrepl_per_s", float64(iters)/((prev-t0)/1e9)/1e6)
	figure("live_mb", float64(nslots*(128+8))/1e6)
	checksum(h)
	wlFinish()
}
