package delta

import (
	"reflect"
	"strings"
	"testing"

	"github.com/relcue/release/modules/pkgzip"
)

func fi(sha string, size int64, exec bool) fileInfo {
	return fileInfo{Digest: pkgzip.Digest{SHA256: strings.Repeat(sha, 64/len(sha)), Size: size}, Exec: exec}
}

func TestDiffFiles(t *testing.T) {
	base := map[string]fileInfo{
		"VERSION":                   fi("a", 6, false),
		"same.txt":                  fi("b", 1, false),
		"changed.txt":               fi("c", 1, false),
		"mode.exe":                  fi("d", 1, false),
		"gone.txt":                  fi("e", 1, false),
		"bin/cni/flannel.exe":       fi("f", 1, true),
		"bin/cni/old.exe":           fi("0", 1, true),
		"bin/cnix/not-whole.exe":    fi("1", 1, false),
		"etc/kubernetes/pki/ca.crt": fi("2", 1, false),
		"bin/cni/local-x.conf":      fi("3", 1, false),
		"package-manifest.json":     fi("4", 1, false),
		"moved-out.exe":             fi("5", 1, false),
	}
	target := map[string]fileInfo{
		"VERSION":                   fi("9", 6, false),
		"same.txt":                  fi("b", 1, false),
		"changed.txt":               fi("8", 1, false),
		"mode.exe":                  fi("d", 1, true),
		"new/added.txt":             fi("7", 1, false),
		"bin/cni/flannel.exe":       fi("f", 1, true),
		"bin/cni/moved-out.exe":     fi("5", 1, false),
		"bin/cnix/not-whole.exe":    fi("6", 1, false),
		"etc/kubernetes/pki/ca.crt": fi("a", 1, false),
		"etc/kubernetes/pki/n.crt":  fi("a", 1, false),
		"package-manifest.json":     fi("b", 1, false),
	}
	got := diffFiles(base, target, []string{"bin/cni"}, newSkipper([]string{"etc/kubernetes/pki/**", "bin/cni/local-*.conf"}, nil, nil))
	want := fileDiff{
		Added:       []string{"new/added.txt"},
		Changed:     []string{"VERSION", "bin/cnix/not-whole.exe", "changed.txt", "mode.exe"},
		Removed:     []string{"gone.txt", "moved-out.exe"},
		Skipped:     []string{"bin/cni/local-x.conf", "etc/kubernetes/pki/ca.crt", "etc/kubernetes/pki/n.crt"},
		WholeBase:   []string{"bin/cni/flannel.exe", "bin/cni/old.exe"},
		WholeTarget: []string{"bin/cni/flannel.exe", "bin/cni/moved-out.exe"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("diffFiles:\n got %+v\nwant %+v", got, want)
	}
}

func TestNormalizeWholeDirs(t *testing.T) {
	got, err := normalizeWholeDirs([]string{`bin\cni\`, "/bin/cni", "lib/x/", "bin/kube"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"bin/cni", "bin/kube", "lib/x"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, bad := range []string{"", "/", "../bin", "bin/../../x", ".release-apply", "C:/bin"} {
		if _, err := normalizeWholeDirs([]string{bad}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestNormalizeSkip(t *testing.T) {
	got, err := normalizeSkip([]string{"b/**", "a", "b/**"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b/**"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, bad := range []string{"", "/abs", "a**b", "[", `a\b`} {
		if _, err := normalizeSkip([]string{bad}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
