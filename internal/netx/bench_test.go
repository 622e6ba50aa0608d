package netx_test

import (
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/relcue/release/internal/netx"
	"github.com/relcue/release/internal/netx/netxtest"
)

// BenchmarkDownload measures what the watchdog costs a fast transfer:
// 64 MiB over loopback, watched and not.
func BenchmarkDownload(b *testing.B) {
	const size = 64 << 20
	chunk := make([]byte, 1<<20)
	srv := netxtest.Start(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		for i := 0; i < size/len(chunk); i++ {
			w.Write(chunk)
		}
	}))
	plain := http.DefaultTransport.(*http.Transport).Clone()
	for name, rt := range map[string]http.RoundTripper{"plain": plain, "watched": netx.Config{}.NewTransport(nil)} {
		b.Run(name, func(b *testing.B) {
			client := &http.Client{Transport: rt}
			b.SetBytes(size)
			for b.Loop() {
				resp, err := client.Get(srv.URL)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, resp.Body); err != nil || n != size {
					b.Fatal(n, err)
				}
				resp.Body.Close()
			}
		})
	}
}
