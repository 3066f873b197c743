package budget

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupUnlimited is the least value that cgroup v1 writes for "no limit"
// (it writes the largest multiple of the page size under 2^63).
const cgroupUnlimited = 1 << 62

// CgroupLimit returns the memory limit of the process's cgroup, read
// under root (the cgroup file system, /sys/fs/cgroup) with the process's
// cgroup paths from selfCgroup (the contents of /proc/self/cgroup): cgroup
// v2's memory.max, else v1's memory.limit_in_bytes. It looks in the
// process's own cgroup first, then at the root of the mount, which is the
// container's own cgroup in a container with a cgroup namespace. It
// returns 0 when there is no limit ("max", or v1's huge value) or no
// cgroup file system.
func CgroupLimit(root string, selfCgroup []byte) (int64, error) {
	v2, v1 := cgroupPaths(selfCgroup)
	candidates := []string{
		filepath.Join(root, v2, "memory.max"),
		filepath.Join(root, "memory.max"),
		filepath.Join(root, "memory", v1, "memory.limit_in_bytes"),
		filepath.Join(root, "memory", "memory.limit_in_bytes"),
	}
	for _, path := range candidates {
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("cgroup memory limit: %w", err)
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("cgroup memory limit: %s: %q is not a number of bytes", path, v)
		}
		if n >= cgroupUnlimited {
			return 0, nil
		}
		return n, nil
	}
	return 0, nil
}

// cgroupPaths returns the process's cgroup v2 path and its v1 memory
// controller's path, from /proc/self/cgroup lines such as "0::/a/b" (v2)
// and "4:memory:/a/b" (v1); "/" for those absent.
func cgroupPaths(self []byte) (v2, v1 string) {
	v2, v1 = "/", "/"
	sc := bufio.NewScanner(bytes.NewReader(self))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case hasController(parts[1], "memory"):
			v1 = parts[2]
		}
	}
	return v2, v1
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}
