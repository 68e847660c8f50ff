// bench/go/heapgrow.go: the Go twin of bench/wl-heapgrow.c (a mixed-size
// live set under churn; bench/run divides the peak RSS by the live bytes).
// The slots hold unsafe.Pointer to each []byte's first byte, 8 bytes a
// slot as in C (a slice header would be 24).
package main

import "unsafe"

func main() {
	defSlots, defChurn := 500000.0, 20000000.0
	if quick() {
		defSlots, defChurn = 5000, 100000
	}
	nslots := uint64(arg("slots", defSlots))
	churn := uint64(arg("churn", defChurn))
	slots := make([]unsafe.Pointer, nslots)
	sizes := make([]uint32, nslots)
	var rng uint64 = 0x853c49e6748fea9b
	var live uint64
	for i := uint64(0); i < nslots+churn; i++ {
		k := i
		if i >= nslots {
			k = wlRand(&rng) % nslots
		}
		sz := uint64(16) << (wlRand(&rng) % 6)
		b := make([]byte, sz)
		*(*uint64)(unsafe.Pointer(&b[0])) = i
		if i >= nslots {
			live -= uint64(sizes[k])
		}
		slots[k] = unsafe.Pointer(&b[0])
		sizes[k] = uint32(sz)
		live += sz
	}
	h := foldInit
	for k := uint64(0); k < nslots; k++ {
		h = fold(h, *(*uint64)(slots[k])*64+uint64(sizes[k]))
	}
	figure("live_mb", float64(live+nslots*8)/1e6)
	checksum(h)
	wlFinish()
}
