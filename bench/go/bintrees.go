// bench/go/bintrees.go: the Go twin of bench/wl-bintrees.c (binary-trees,
// --depth N, --threads T goroutines splitting every depth's trees).
package main

import (
	"fmt"
	"sync"
)

type node struct{ l, r *node }

func bottomUp(d int) *node {
	if d <= 0 {
		return &node{}
	}
	l := bottomUp(d - 1)
	r := bottomUp(d - 1)
	return &node{l, r}
}

func (n *node) check() int64 {
	if n.l == nil {
		return 1
	}
	return 1 + n.l.check() + n.r.check()
}

func main() {
	minDepth := 4
	def := 21.0
	if quick() {
		def = 12
	}
	maxDepth := int(arg("depth", def))
	nthreads := int(arg("threads", 1))
	if maxDepth < minDepth+2 {
		maxDepth = minDepth + 2
	}
	h := foldInit
	c := bottomUp(maxDepth + 1).check()
	fmt.Printf("stretch tree of depth %d\t check: %d\n", maxDepth+1, c)
	h = fold(h, uint64(c))

	longlived := bottomUp(maxDepth)
	checks := make([][]int64, 32)
	for i := range checks {
		checks[i] = make([]int64, nthreads)
	}
	mutator := func(id int) {
		for d := minDepth; d <= maxDepth; d += 2 {
			iters := int64(1) << uint(maxDepth-d+minDepth)
			lo := iters * int64(id) / int64(nthreads)
			hi := iters * int64(id+1) / int64(nthreads)
			var c int64
			for i := lo; i < hi; i++ {
				c += bottomUp(d).check()
			}
			checks[(d-minDepth)/2][id] = c
		}
	}
	var wg sync.WaitGroup
	for i := 1; i < nthreads; i++ {
		wg.Add(1)
		go func(id int) { mutator(id); wg.Done() }(i)
	}
	mutator(0)
	wg.Wait()
	for d := minDepth; d <= maxDepth; d += 2 {
		var sum int64
		for i := 0; i < nthreads; i++ {
			sum += checks[(d-minDepth)/2][i]
		}
		fmt.Printf("%d\t trees of depth %d\t check: %d\n",
			int64(1)<<uint(maxDepth-d+minDepth), d, sum)
		h = fold(h, uint64(sum))
	}
	c = longlived.check()
	fmt.Printf("long lived tree of depth %d\t check: %d\n", maxDepth, c)
	h = fold(h, uint64(c))
	checksum(h)
	wlFinish()
}
