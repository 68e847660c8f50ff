// bench/go/mark.go: the Go twin of bench/wl-mark.c (mark throughput on a
// 1 GiB tree of 64-byte objects, forced collections with runtime.GC).
package main

import (
	"runtime"
	"runtime/debug"
)

type mobj struct {
	a, b *mobj
	v    [6]uint64
}

func build(d int, id *uint64) *mobj {
	var a, b *mobj
	if d > 0 {
		a = build(d-1, id)
		b = build(d-1, id)
	}
	o := &mobj{a: a, b: b}
	o.v[0] = *id
	*id++
	return o
}

func walk(o *mobj) uint64 {
	h := o.v[0]
	if o.a != nil {
		h += walk(o.a)*3 + walk(o.b)
	}
	return h
}

func main() {
	def := 23.0
	if quick() {
		def = 16
	}
	depth := int(arg("depth", def))
	cycles := int(arg("cycles", 3))
	old := debug.SetGCPercent(-1)
	var id uint64
	root := build(depth, &id)
	debug.SetGCPercent(old)
	mb := float64(id) * 64 / 1e6
	var bestWall, bestCPU float64
	for c := 0; c < cycles; c++ {
		w0, c0 := mono(), cpuS()
		runtime.GC()
		w := (mono() - w0) / 1e9
		cpu := cpuS() - c0
		if c == 0 || w < bestWall {
			bestWall = w
		}
		if c == 0 || cpu < bestCPU {
			bestCPU = cpu
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	figure("live_mb", mb)
	figure("marked_mb", float64(m.HeapAlloc)/1e6)
	figure("collect_s", bestWall)
	figure("mb_per_s", mb/bestWall)
	if bestCPU <= 0 {
		bestCPU = 1e-6
	}
	figure("mb_per_cpu_s", mb/bestCPU)
	h := fold(foldInit, walk(root))
	h = fold(h, id)
	checksum(h)
	wlFinish()
}
