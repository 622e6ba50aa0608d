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

// TestIgnoreCase: a (?i) pattern matches letters in any case, as K2s's
// -ieq and -like do; without the prefix, case still matters.
func TestIgnoreCase(t *testing.T) {
	cases := []struct {
		pat, name string
		want      bool
	}{
		{"(?i)**/config", "config", true},
		{"(?i)**/config", "lib/x/Config", true},
		{"(?i)**/config", "lib/x/CONFIG", true},
		{"(?i)**/config", "lib/x/config.json", false},
		{"(?i)Addons/**", "addons/metrics/x.yaml", true},
		{"(?i)**/Kubemaster-Base.vhdx", "bin/KUBEMASTER-BASE.VHDX", true},
		{"(?i)etc/kubernetes/pki/**", "Etc/Kubernetes/PKI/ca.crt", true},
		{"(?i)bin/[a-c].exe", "bin/B.exe", true},
		{"**/config", "lib/x/Config", false},
	}
	for _, c := range cases {
		if err := Validate(c.pat); err != nil {
			t.Fatalf("Validate(%q): %v", c.pat, err)
		}
		if got := MatchPrefix(c.pat, c.name); got != c.want {
			t.Errorf("MatchPrefix(%q, %q) = %v, want %v", c.pat, c.name, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, bad := range []string{"", "/abs", "a/b**", "[", "(?i)", "(?i)/abs", "(?i)["} {
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
