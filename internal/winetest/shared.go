package winetest

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/relcue/release/internal/peers"
)

var (
	sharedOnce sync.Once
	shared     *Prefix
	sharedErr  error
	sharedRoot string
)

// Shared returns the test binary's one Prefix, creating it on first use
// (wineboot takes about 10 s, so tests share it). Missing Wine or mingw-w64
// skips the test with an install hint, or fails it when
// RELEASE_REQUIRE_PEERS=1. The test binary's TestMain must call Shutdown
// after m.Run.
func Shared(t testing.TB) *Prefix {
	t.Helper()
	tools := Tools{
		Wine:       peers.Tool(t, "wine"),
		Wineserver: peers.Tool(t, "wineserver"),
		MingwGCC:   peers.Tool(t, "x86_64-w64-mingw32-gcc"),
	}
	sharedOnce.Do(func() {
		if sharedRoot, sharedErr = os.MkdirTemp("", "release-wine-"); sharedErr != nil {
			return
		}
		shared, sharedErr = NewPrefix(filepath.Join(sharedRoot, "prefix"), tools)
	})
	if sharedErr != nil {
		t.Fatalf("winetest: %v", sharedErr)
	}
	return shared
}

// Shutdown stops the shared prefix's processes and server and removes it,
// if Shared created one.
func Shutdown() error {
	var err error
	if shared != nil {
		err = shared.Close()
	}
	if sharedRoot != "" {
		if rerr := os.RemoveAll(sharedRoot); err == nil {
			err = rerr
		}
	}
	return err
}
