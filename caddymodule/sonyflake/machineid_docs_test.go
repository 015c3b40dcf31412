package sonyflake

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// docMachineIDExample is how the docs state a `machine_id cidr` example:
// "<address> in <prefix> gets machine ID <n>".
var docMachineIDExample = regexp.MustCompile(`(\d+\.\d+\.\d+\.\d+) in (\d+\.\d+\.\d+\.\d+/\d+) gets machine ID (\d+)`)

// TestDocsMachineIDExamples checks every `machine_id cidr` example in the
// user docs against the code: the number they promise is the one an edge
// with that address would use.
func TestDocsMachineIDExamples(t *testing.T) {
	for _, doc := range []string{"Caddyfile.example", "README.md", filepath.Join("docs", "design.md")} {
		t.Run(doc, func(t *testing.T) {
			examples := docMachineIDExample.FindAllStringSubmatch(proseOf(t, doc), -1)
			if len(examples) == 0 {
				t.Fatalf("no %q example left in %s", docMachineIDExample, doc)
			}
			for _, ex := range examples {
				addr, cidr, promised := ex[1], ex[2], ex[3]
				host := []netInterface{ifc("eth0", addr+"/"+strings.Split(cidr, "/")[1])}
				got, err := resolveMachineID(machineIDSource{cidr: cidr}, defaultMachineIDBits, nil,
					func() ([]netInterface, error) { return host, nil })
				if err != nil {
					t.Errorf("%s: %q: %v", doc, ex[0], err)
					continue
				}
				if strconv.Itoa(got.id) != promised {
					t.Errorf("%s says %q; the edge uses machine ID %d", doc, ex[0], got.id)
				}
			}
		})
	}
}

// proseOf is a repository file as one line of words: comment markers and
// line breaks removed, so that a sentence wrapped over comment lines reads
// as one.
func proseOf(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", path))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(string(data), "#", " ")), " ")
}
