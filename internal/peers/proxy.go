package peers

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
)

// Coarse kinds of registry request, as Kind classifies them. A count key is
// the method, a space and the kind: "PUT manifest", "HEAD blob",
// "POST blob-upload".
const (
	KindPing       = "ping"        // /v2/
	KindCatalog    = "catalog"     // /v2/_catalog
	KindBlob       = "blob"        // /v2/<name>/blobs/<digest>
	KindBlobUpload = "blob-upload" // /v2/<name>/blobs/uploads/[<id>]
	KindBlobMount  = "blob-mount"  // POST /v2/<name>/blobs/uploads/?mount=...
	KindManifest   = "manifest"    // /v2/<name>/manifests/<ref>
	KindTags       = "tags"        // /v2/<name>/tags/list
	KindReferrers  = "referrers"   // /v2/<name>/referrers/<digest>
	KindOther      = "other"
)

// Kind classifies a registry request by its path (and mount query).
func Kind(r *http.Request) string {
	p := r.URL.Path
	switch {
	case p == "/v2" || p == "/v2/":
		return KindPing
	case !strings.HasPrefix(p, "/v2/"):
		return KindOther
	case p == "/v2/_catalog":
		return KindCatalog
	case strings.Contains(p, "/blobs/uploads"):
		if r.Method == http.MethodPost && r.URL.Query().Get("mount") != "" {
			return KindBlobMount
		}
		return KindBlobUpload
	case strings.Contains(p, "/manifests/"):
		return KindManifest
	case strings.Contains(p, "/blobs/"):
		return KindBlob
	case strings.HasSuffix(p, "/tags/list"):
		return KindTags
	case strings.Contains(p, "/referrers/"):
		return KindReferrers
	}
	return KindOther
}

// Key is the count key of a request: method, space, kind.
func Key(r *http.Request) string { return r.Method + " " + Kind(r) }

// Match selects requests for fault injection.
type Match func(r *http.Request) bool

// On matches requests with the given method ("" for any) and kind ("" for
// any), e.g. On("PUT", KindManifest).
func On(method, kind string) Match {
	return func(r *http.Request) bool {
		return (method == "" || r.Method == method) && (kind == "" || Kind(r) == kind)
	}
}

// Proxy is a reverse proxy in front of a Registry that counts requests and
// can fail chosen ones. Clients talk to Proxy.Host as if it were the
// registry; the registry's Location headers point back at the proxy.
type Proxy struct {
	// Host is "127.0.0.1:PORT" of the proxy.
	Host string

	srv      *httptest.Server
	mu       sync.Mutex
	counts   map[string]int
	log      []string
	faults   []*fault
	injected int
}

type fault struct {
	n, status int
	match     Match
}

// CountingProxy starts a counting, fault-injecting reverse proxy on
// 127.0.0.1 in front of r, closed when the test ends.
func (r *Registry) CountingProxy(t testing.TB) *Proxy {
	t.Helper()
	target, err := url.Parse(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{counts: map[string]int{}}
	transport := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// Keep the client's Host so the registry builds Location
			// headers that lead back through the proxy.
			pr.Out.Host = pr.In.Host
		},
		Transport: transport,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "peers proxy: registry unreachable: "+err.Error(), http.StatusBadGateway)
		},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("peers: proxy listen: %v", err)
	}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if status, fail := p.record(req); fail {
			if status == 0 {
				// Drop the connection without an answer: an interrupted transfer.
				panic(http.ErrAbortHandler)
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(req.Body, 64<<20))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"errors":[{"code":"UNAVAILABLE","message":"injected by peers.Proxy (%d)"}]}`+"\n", status)
			return
		}
		rp.ServeHTTP(w, req)
	}))
	p.srv.Listener.Close()
	p.srv.Listener = l
	p.srv.Start()
	p.Host = l.Addr().String()
	t.Cleanup(func() {
		p.srv.Close()
		transport.CloseIdleConnections()
	})
	return p
}

// record counts req and reports whether a fault applies (and its status).
func (p *Proxy) record(req *http.Request) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[Key(req)]++
	if len(p.log) < 100000 {
		p.log = append(p.log, req.Method+" "+req.URL.RequestURI())
	}
	for i, f := range p.faults {
		if f.match == nil || f.match(req) {
			f.n--
			if f.n <= 0 {
				p.faults = append(p.faults[:i], p.faults[i+1:]...)
			}
			p.injected++
			return f.status, true
		}
	}
	return 0, false
}

// URL is "http://" + Host.
func (p *Proxy) URL() string { return "http://" + p.Host }

// Counts returns a copy of the request counts by Key ("PUT manifest", ...),
// injected failures included.
func (p *Proxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// Count is the number of requests with method and kind ("" for any).
func (p *Proxy) Count(method, kind string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, v := range p.counts {
		m, kd, _ := strings.Cut(k, " ")
		if (method == "" || m == method) && (kind == "" || kd == kind) {
			n += v
		}
	}
	return n
}

// Uploads is the number of blob upload requests (POST, PATCH, PUT of
// blob-upload): zero after a push that found every blob already there.
func (p *Proxy) Uploads() int { return p.Count("", KindBlobUpload) }

// Total is the number of requests seen.
func (p *Proxy) Total() int { return p.Count("", "") }

// Injected is the number of requests answered by FailNext.
func (p *Proxy) Injected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.injected
}

// Log lists the requests seen, "METHOD /path?query", in order.
func (p *Proxy) Log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}

// String lists the counts sorted by key, for test failure messages.
func (p *Proxy) String() string {
	c := p.Counts()
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%d", k, c[k])
	}
	return "{" + b.String() + "}"
}

// Reset zeroes the counts and the log (pending faults stay).
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts = map[string]int{}
	p.log = nil
	p.injected = 0
}

// FailNext answers the next n requests that match (nil: any) with status
// instead of forwarding them; status 0 drops the connection without an
// answer, as an interrupted transfer would. Faults queue in call order.
func (p *Proxy) FailNext(n, status int, match Match) {
	if n <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, &fault{n: n, status: status, match: match})
}

// ClearFaults drops any faults not yet used up.
func (p *Proxy) ClearFaults() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = nil
}
