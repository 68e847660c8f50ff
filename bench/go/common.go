// bench/go/common.go: what the Go twins of the workloads (bench/wl-*.c)
// share: the same command line (--quick, --NAME V), the same checksum fold
// and random numbers as bench/wl.h, and the same output lines:
//
//	checksum HEX, figure NAME VALUE
//
// wlFinish prints the collector's own counters (gc_cycles and the
// stop-the-world pauses, from runtime.MemStats).
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

const foldInit uint64 = 0xcbf29ce484222325

var sink interface{}

func fold(h, v uint64) uint64 { return (h ^ v) * 0x100000001b3 }

func wlRand(s *uint64) uint64 {
	x := *s
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	*s = x
	return x * 0x2545f4914f6cdd1d
}

func quick() bool {
	for _, a := range os.Args[1:] {
		if a == "--quick" {
			return true
		}
	}
	return false
}

func arg(name string, def float64) float64 {
	for i := 1; i+1 < len(os.Args); i++ {
		if os.Args[i] == "--"+name {
			v, err := strconv.ParseFloat(os.Args[i+1], 64)
			if err != nil {
				die("bad --" + name)
			}
			return v
		}
	}
	return def
}

func die(msg string) {
	fmt.Fprintln(os.Stderr, "go:", msg)
	os.Exit(1)
}

func figure(name string, v float64) { fmt.Printf("figure %s %.6g\n", name, v) }

func checksum(h uint64) { fmt.Printf("checksum %016x\n", h) }

var start = time.Now()

// Monotonic nanoseconds since start (time.Since reads the monotonic clock).
func mono() float64 { return float64(time.Since(start)) }

func cpuS() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec) + float64(ru.Utime.Usec)/1e6 +
		float64(ru.Stime.Sec) + float64(ru.Stime.Usec)/1e6
}

func wlFinish() {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	var max uint64
	n := int(m.NumGC)
	if n > len(m.PauseNs) {
		n = len(m.PauseNs) // the last 256 cycles only
	}
	for i := 0; i < n; i++ {
		if m.PauseNs[i] > max {
			max = m.PauseNs[i]
		}
	}
	figure("gc_cycles", float64(m.NumGC))
	figure("gc_pause_max_ms", float64(max)/1e6)
	figure("gc_pause_total_ms", float64(m.PauseTotalNs)/1e6)
}
