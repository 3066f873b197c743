package budget

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCgroupMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string // under the cgroup root
		self  string            // /proc/self/cgroup
		want  int64
		err   bool
	}{
		{name: "none", want: 0},
		{name: "v2 root", files: map[string]string{"memory.max": "1073741824\n"}, self: "0::/\n", want: 1 << 30},
		{name: "v2 max", files: map[string]string{"memory.max": "max\n"}, self: "0::/\n", want: 0},
		{name: "v2 own cgroup", files: map[string]string{"memory.max": "max\n", "kubepods/pod1/memory.max": "536870912\n"},
			self: "0::/kubepods/pod1\n", want: 512 << 20},
		{name: "v2 namespace root", files: map[string]string{"memory.max": "268435456\n"}, self: "0::/kubepods/pod1\n", want: 256 << 20},
		{name: "v1", files: map[string]string{"memory/memory.limit_in_bytes": "2147483648\n"}, self: "4:memory:/\n0::/\n", want: 2 << 30},
		{name: "v1 own cgroup", files: map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n", "memory/docker/abc/memory.limit_in_bytes": "1073741824"},
			self: "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n", want: 1 << 30},
		{name: "v1 unlimited", files: map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, self: "4:memory:/\n", want: 0},
		{name: "v1 controller list", files: map[string]string{"memory/x/memory.limit_in_bytes": "4096"}, self: "3:cpu,memory:/x\n", want: 4096},
		{name: "v2 before v1", files: map[string]string{"memory.max": "8192", "memory/memory.limit_in_bytes": "4096"}, self: "0::/\n4:memory:/\n", want: 8192},
		{name: "garbage", files: map[string]string{"memory.max": "lots\n"}, self: "0::/\n", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tc.files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := CgroupLimit(root, []byte(tc.self))
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("got %d, %v; want %d (error %v)", got, err, tc.want, tc.err)
			}
		})
	}
}
