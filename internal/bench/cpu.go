package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// defaultClockTicks is USER_HZ on every mainstream Linux build; it is only
// used when the auxiliary vector cannot be read.
const defaultClockTicks = 100

// atClkTck is the auxiliary vector key carrying the kernel's USER_HZ, the
// unit of utime/stime in /proc/PID/stat (what sysconf(_SC_CLK_TCK) returns).
const atClkTck = 17

// cpuSample is one reading of a process's consumed CPU time.
type cpuSample struct {
	// stat is utime+stime from /proc/PID/stat. It includes threads that have
	// already exited but only has clock-tick (usually 10ms) resolution.
	stat time.Duration
	// sched is the sum of the first /proc/PID/task/*/schedstat field: time
	// on CPU in nanoseconds for every live thread. Much finer than stat, but
	// threads that exit mid-window take their share with them.
	sched time.Duration
	// schedOK reports whether sched could be read (it needs schedstats
	// support in the kernel and permission to read the tasks).
	schedOK bool
}

// cpuReader samples the CPU time of one process from /proc.
type cpuReader struct {
	pid   int
	ticks int64 // clock ticks per second for /proc/PID/stat
}

// newCPUReader prepares to sample pid. It fails early when the process is
// not visible so that a typo in --pid is reported before the run, not after.
func newCPUReader(pid int) (*cpuReader, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("invalid pid %d", pid)
	}
	r := &cpuReader{pid: pid, ticks: clockTicks()}
	if _, err := r.sample(); err != nil {
		return nil, err
	}
	return r, nil
}

// sample reads the process's CPU time now.
func (r *cpuReader) sample() (cpuSample, error) {
	var s cpuSample
	stat, err := readStatCPU(r.pid, r.ticks)
	if err != nil {
		return s, err
	}
	s.stat = stat
	s.sched, s.schedOK = readSchedstatCPU(r.pid)
	return s, nil
}

// cpuDelta is the CPU time consumed between two samples and where it came from.
type cpuDelta struct {
	total     time.Duration // the preferred figure
	source    string        // "schedstat" or "stat"
	stat      time.Duration
	sched     time.Duration
	schedUsed bool
}

// diff prefers schedstat because stat's 10ms ticks are too coarse to divide
// by a few thousand calls; stat is still reported as a cross-check.
func diff(start, end cpuSample) cpuDelta {
	d := cpuDelta{stat: nonNegative(end.stat - start.stat), source: "stat"}
	d.total = d.stat
	if start.schedOK && end.schedOK {
		d.sched = nonNegative(end.sched - start.sched)
		d.total, d.source, d.schedUsed = d.sched, "schedstat", true
	}
	return d
}

// nonNegative clamps d at zero: schedstat sums can shrink when a thread exits.
func nonNegative(d time.Duration) time.Duration {
	return max(d, 0)
}

// readStatCPU returns utime+stime of pid.
func readStatCPU(pid int, ticks int64) (time.Duration, error) {
	path := filepath.Join("/proc", strconv.Itoa(pid), "stat")
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read cpu time: %w", err)
	}
	utime, stime, err := parseStat(data)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	total := utime + stime
	return time.Duration(total) * time.Second / time.Duration(ticks), nil
}

// parseStat extracts utime and stime (fields 14 and 15) from a
// /proc/PID/stat line. The command name (field 2) may contain spaces and
// parentheses, so fields are counted from the last ')'.
func parseStat(data []byte) (utime, stime uint64, err error) {
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return 0, 0, errors.New("no command name")
	}
	fields := bytes.Fields(data[end+1:])
	// fields[0] is field 3 (state), so field N is fields[N-3].
	const utimeIdx, stimeIdx = 14 - 3, 15 - 3
	if len(fields) <= stimeIdx {
		return 0, 0, fmt.Errorf("only %d fields", len(fields)+2)
	}
	if utime, err = strconv.ParseUint(string(fields[utimeIdx]), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("utime: %w", err)
	}
	if stime, err = strconv.ParseUint(string(fields[stimeIdx]), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("stime: %w", err)
	}
	return utime, stime, nil
}

// readSchedstatCPU sums on-CPU nanoseconds over pid's threads. ok is false
// when no thread's schedstat could be read.
func readSchedstatCPU(pid int) (total time.Duration, ok bool) {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, false
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
		if err != nil {
			continue // the thread exited between ReadDir and ReadFile
		}
		ns, err := parseSchedstat(data)
		if err != nil {
			return 0, false
		}
		total += time.Duration(ns)
		ok = true
	}
	return total, ok
}

// parseSchedstat returns the first field of a schedstat line: time spent
// on the CPU in nanoseconds.
func parseSchedstat(data []byte) (uint64, error) {
	fields := bytes.Fields(data)
	if len(fields) == 0 {
		return 0, errors.New("empty schedstat")
	}
	ns, err := strconv.ParseUint(string(fields[0]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("schedstat: %w", err)
	}
	return ns, nil
}

// clockTicks returns USER_HZ. Go has no sysconf without cgo, but the kernel
// hands the same value to every process in its auxiliary vector.
func clockTicks() int64 {
	data, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return defaultClockTicks
	}
	if hz := auxvValue(data, atClkTck); hz > 0 {
		return int64(hz)
	}
	return defaultClockTicks
}

// auxvValue finds key in an auxiliary vector of native-endian, pointer-sized
// (key, value) pairs. It returns 0 when the key is absent.
func auxvValue(data []byte, key uint64) uint64 {
	word := strconv.IntSize / 8
	for len(data) >= 2*word {
		k, v := readWord(data, word), readWord(data[word:], word)
		if k == key {
			return v
		}
		data = data[2*word:]
	}
	return 0
}

func readWord(b []byte, size int) uint64 {
	if size == 4 {
		return uint64(binary.NativeEndian.Uint32(b))
	}
	return binary.NativeEndian.Uint64(b)
}
