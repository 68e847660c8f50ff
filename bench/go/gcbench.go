// bench/go/gcbench.go: the Go twin of bench/wl-gcbench.c (GCBench).
package main

import "fmt"

type gnode struct {
	left, right *gnode
	i, j        int32
}

var stretchDepth, longDepth, minDepth, maxDepth = 18, 16, 4, 16
var arraySize = 500000

func treeSize(d int) int64 { return (int64(1) << uint(d+1)) - 1 }

func populate(d int, n *gnode) {
	if d <= 0 {
		return
	}
	d--
	n.left = &gnode{}
	n.right = &gnode{}
	populate(d, n.left)
	populate(d, n.right)
}

func makeTree(d int) *gnode {
	if d <= 0 {
		return &gnode{}
	}
	l := makeTree(d - 1)
	r := makeTree(d - 1)
	return &gnode{left: l, right: r}
}

func walk(n *gnode, sum *int64) int64 {
	if n == nil {
		return 0
	}
	*sum += int64(n.i + n.j)
	return 1 + walk(n.left, sum) + walk(n.right, sum)
}

func timeConstruction(d int) {
	iters := 2 * treeSize(stretchDepth) / treeSize(d)
	for i := int64(0); i < iters; i++ {
		t := &gnode{}
		populate(d, t)
		sink = t
	}
	for i := int64(0); i < iters; i++ {
		sink = makeTree(d)
	}
	sink = nil
}

func main() {
	if quick() {
		stretchDepth -= 6
		longDepth -= 6
		maxDepth -= 6
		arraySize /= 64
	}
	h := foldInit
	var isum int64
	n := walk(makeTree(stretchDepth), &isum)
	h = fold(h, uint64(n))

	longlived := &gnode{}
	populate(longDepth, longlived)
	array := make([]float64, arraySize)
	for i := 1; i < arraySize/2; i++ {
		array[i] = 1.0 / float64(i)
	}
	for d := minDepth; d <= maxDepth; d += 2 {
		timeConstruction(d)
	}
	if array[1000] != 1.0/1000 {
		die("the array was lost")
	}
	n = walk(longlived, &isum)
	if n != treeSize(longDepth) {
		die("the long-lived tree was damaged")
	}
	var sum float64
	for _, v := range array {
		sum += v
	}
	h = fold(h, uint64(n))
	h = fold(h, uint64(isum))
	h = fold(h, uint64(sum*1e6))
	fmt.Printf("gcbench: long-lived nodes %d, array sum %.6f\n", n, sum)
	checksum(h)
	wlFinish()
}
