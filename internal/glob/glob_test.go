package glob

import (
	"strings"
	"testing"
)

// TestMatch covers the whole-path matching MatchPrefix applies to name and
// each of its parents.
func TestMatch(t *testing.T) {
	cases := []struct {
		pat, name string
		want      bool
	}{
		{"etc/kubernetes/pki/*", "etc/kubernetes/pki/ca.crt", true},
		{"etc/kubernetes/pki/*", "etc/kubernetes/pki/etcd/ca.crt", false},
		{"etc/kubernetes/pki/**", "etc/kubernetes/pki/etcd/ca.crt", true},
		{"addons/**", "addons", true},
		{"addons/**", "addons/a/b.yaml", true},
		{"**/*.log", "a/b/c.log", true},
		{"**/*.log", "c.log", true},
		{"**/*.log", "c.txt", false},
		{"bin/?.exe", "bin/k.exe", true},
		{"bin/[ab].exe", "bin/c.exe", false},
		{"package/*", "package/1.5.0", true},
		{"delta/*", "delta/1.4.0..1.5.0", true},
		{"*", "delta/1.4.0..1.5.0", false},
		{"**", "delta/1.4.0..1.5.0", true},
	}
	for _, c := range cases {
		if got := match(strings.Split(c.pat, "/"), strings.Split(c.name, "/")); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.pat, c.name, got, c.want)
		}
	}
}

func TestMatchPrefix(t *testing.T) {
	if !MatchPrefix("addons", "addons/x/y") {
		t.Error("addons should cover addons/x/y")
	}
	if MatchPrefix("addon", "addons/x") {
		t.Error("addon must not cover addons/x")
	}
}

func TestValidate(t *testing.T) {
	for _, bad := range []string{"", "/abs", "a/b**", "["} {
		if err := Validate(bad); err == nil {
			t.Errorf("Validate(%q) = nil, want error", bad)
		}
	}
	for _, good := range []string{"a/*", "**/x", "etc/kubernetes/pki/*"} {
		if err := Validate(good); err != nil {
			t.Errorf("Validate(%q) = %v", good, err)
		}
	}
}
