package config

import (
	"slices"
	"testing"
)

func TestDeltaDefaults(t *testing.T) {
	whole, skip, err := DeltaDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(whole, []string{"bin/cni"}) {
		t.Errorf("wholeDirectories = %v", whole)
	}
	if !slices.Contains(skip, "etc/kubernetes/pki/**") || !slices.Contains(skip, "var/lib/kubelet/pki/**") {
		t.Errorf("skip = %v", skip)
	}
}
