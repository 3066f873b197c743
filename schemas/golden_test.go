package schemas

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

func goldenPath(name string) string {
	return filepath.Join("testdata", "golden", name+".bin")
}

// TestGolden pins the exact single-object bytes of each record's fixed
// sample. A diff here means the wire contract changed: if that is intended,
// keep the previous schema readable (see the package documentation on
// evolution) and rewrite the files with -update.
func TestGolden(t *testing.T) {
	c := newSOECodec(t)
	for _, rc := range recordCases {
		t.Run(rc.name, func(t *testing.T) {
			sample := rc.samples()[0]
			got, err := rc.append(c, nil, sample)
			if err != nil {
				t.Fatal(err)
			}
			path := goldenPath(rc.name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("encoding differs from %s:\n got:\n%s\nwant:\n%s", path, hex.Dump(got), hex.Dump(want))
			}
			v := rc.newValue()
			if err := rc.decode(c, want, v); err != nil {
				t.Fatalf("decode %s: %v", path, err)
			}
			if !reflect.DeepEqual(v, sample) {
				t.Errorf("%s decodes to\n%+v\nwant\n%+v", path, v, sample)
			}
		})
	}
}
