// bench/go/alloc.go: the Go twin of bench/wl-alloc.c (allocation
// throughput, nothing retained or 1 in 1000 kept in a 16384-slot ring).
// Every object is stored in a global (sink) so that it escapes to the
// heap, as the C twins store theirs in a volatile global.
package main

import "fmt"

const ring = 16384

type obj16 struct {
	p *obj16
	v uint64
}
type obj32 struct {
	p   *obj32
	v   uint64
	pad [2]uint64
}
type obj64 struct {
	p   *obj64
	v   uint64
	pad [6]uint64
}

var s16 *obj16
var s32 *obj32
var s64 *obj64

func run16(ringMode bool, n uint64, h uint64) uint64 {
	var r []*obj16
	if ringMode {
		r = make([]*obj16, ring)
	}
	t0, c0 := mono(), cpuS()
	for i := uint64(0); i < n; i++ {
		o := &obj16{}
		o.v = i
		s16 = o
		if ringMode && i%1000 == 0 {
			r[(i/1000)%ring] = o
		}
	}
	report(16, ringMode, n, t0, c0)
	h = fold(h, n*16)
	for _, o := range r {
		if o != nil {
			h = fold(h, o.v)
		}
	}
	return h
}

func run32(ringMode bool, n uint64, h uint64) uint64 {
	var r []*obj32
	if ringMode {
		r = make([]*obj32, ring)
	}
	t0, c0 := mono(), cpuS()
	for i := uint64(0); i < n; i++ {
		o := &obj32{}
		o.v = i
		s32 = o
		if ringMode && i%1000 == 0 {
			r[(i/1000)%ring] = o
		}
	}
	report(32, ringMode, n, t0, c0)
	h = fold(h, n*32)
	for _, o := range r {
		if o != nil {
			h = fold(h, o.v)
		}
	}
	return h
}

func run64(ringMode bool, n uint64, h uint64) uint64 {
	var r []*obj64
	if ringMode {
		r = make([]*obj64, ring)
	}
	t0, c0 := mono(), cpuS()
	for i := uint64(0); i < n; i++ {
		o := &obj64{}
		o.v = i
		s64 = o
		if ringMode && i%1000 == 0 {
			r[(i/1000)%ring] = o
		}
	}
	report(64, ringMode, n, t0, c0)
	h = fold(h, n*64)
	for _, o := range r {
		if o != nil {
			h = fold(h, o.v)
		}
	}
	return h
}

func report(size int, ringMode bool, n uint64, t0, c0 float64) {
	t1, c1 := mono(), cpuS()
	mode := "none"
	if ringMode {
		mode = "ring"
	}
	figure(fmt.Sprintf("ns_%d_%s", size, mode), (t1-t0)/float64(n))
	figure(fmt.Sprintf("cpuns_%d_%s", size, mode), (c1-c0)*1e9/float64(n))
}

func main() {
	def := 100000000.0
	if quick() {
		def = 200000
	}
	n := uint64(arg("objs", def))
	h := foldInit
	h = run16(false, n, h)
	h = run16(true, n, h)
	h = run32(false, n, h)
	h = run32(true, n, h)
	h = run64(false, n, h)
	h = run64(true, n, h)
	checksum(h)
	wlFinish()
}
