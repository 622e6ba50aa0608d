package pkgzip

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// windowsRefused has a path per class of name Windows cannot hold, with
// the words its refusal must say.
var windowsRefused = []struct{ class, path, want string }{
	{"device", "lib/CON", `has "CON", which Windows opens as the device CON`},
	{"device lower case", "lib/nul", `has "nul", which Windows opens as the device NUL`},
	{"device with extension", "bin/Aux.exe", `has "Aux.exe", which Windows opens as the device AUX`},
	{"device with two extensions", "prn.tar.gz", `has "prn.tar.gz", which Windows opens as the device PRN`},
	{"device before spaces", "a/nul .txt", `has "nul .txt", which Windows opens as the device NUL`},
	{"device as directory", "COM1/readme.txt", `has "COM1", which Windows opens as the device COM1`},
	{"device COM9", "x/com9.log", `device COM9`},
	{"device LPT1", "x/LPT1", `device LPT1`},
	{"device LPT0", "x/lpt0.txt", `device LPT0`},
	{"device superscript", "x/COM¹", `device COM¹`},
	{"console", "x/CONIN$", `device CONIN$`},
	{"trailing dot", "lib/trail.", `has "trail.", which ends with a dot that Windows strips`},
	{"trailing space", "lib/trail. ", `has "trail. ", which ends with a space that Windows strips`},
	{"trailing space in directory", "dir /a", `has "dir ", which ends with a space`},
	{"less than", "a<b", `has '<' in "a<b"; Windows reserves the characters <>:"|?*`},
	{"greater than", "a>b", `has '>' in "a>b"`},
	{"colon", "lib/a:stream", `has ':' in "a:stream"`},
	{"quote", `say"hi"`, `has '"' in "say\"hi\""`},
	{"pipe", "a|b", `has '|' in "a|b"`},
	{"question mark", "what?", `has '?' in "what?"`},
	{"star", "lib/*.ps1", `has '*' in "*.ps1"`},
	{"control character", "lib/a\x01b", `has '\x01', a control character, in "a\x01b"`},
	{"tab", "lib/a\tb", `has '\t', a control character`},
	{"newline", "lib/a\nb", `has '\n', a control character`},
}

func TestPathPolicyRefusesWhatWindowsCannotHold(t *testing.T) {
	for _, c := range windowsRefused {
		t.Run(c.class, func(t *testing.T) {
			if err := CheckName(c.path); err != nil {
				t.Fatalf("CheckName(%q) = %v; the case must reach the policy", c.path, err)
			}
			for _, p := range []PathPolicy{PathsWindows, ""} {
				err := p.Check(c.path)
				var ne *NameError
				if !errors.As(err, &ne) || !ne.Windows || ne.Path != c.path {
					t.Fatalf("%q.Check(%q) = %#v, want a Windows *NameError for the path", p, c.path, err)
				}
				msg := err.Error()
				for _, want := range []string{"package path " + strconv.Quote(c.path), c.want, "a Windows installation cannot hold it: rename it"} {
					if !strings.Contains(msg, want) {
						t.Errorf("%q.Check(%q) = %q, want it to contain %q", p, c.path, msg, want)
					}
				}
			}
			if err := PathsPOSIX.Check(c.path); err != nil {
				t.Errorf("posix: Check(%q) = %v, want nil", c.path, err)
			}
			hinted := Hint(PathsWindows.Check(c.path), "do this")
			if !strings.HasSuffix(hinted.Error(), ", or do this") {
				t.Errorf("Hint: %q, want the way out at the end", hinted)
			}
		})
	}
}

func TestPathPolicyAllowsOrdinaryNames(t *testing.T) {
	long300 := strings.Repeat("d123456789/", 27) + "file-0.ps1" // 307 bytes, over Windows' MAX_PATH of 260
	for _, ok := range []string{
		"VERSION", "bin/kubectl.exe", "lib/modules/k2s/k2s.node.module/windowsnode/nodepackage.module.psm1",
		"CONFIG", "console.log", "nul2", "COM10", "LPT", "com", "auxiliary/x", "con-fig.txt", "CON_", "a.b.c",
		".hidden", "a/.b", "a..b", "ü/日本.txt", "with space/in the middle.txt", "semi;colon", "brace{}", "at@sign#",
		long300, strings.Repeat("n", MaxSegmentBytes),
	} {
		if err := CheckName(ok); err != nil {
			t.Fatalf("CheckName(%q) = %v", ok, err)
		}
		if err := PathsWindows.Check(ok); err != nil {
			t.Errorf("windows: Check(%q) = %v, want nil", ok, err)
		}
	}
	if len(long300) < 300 {
		t.Fatalf("long300 is %d bytes", len(long300))
	}
}

// The length limits hold whatever the policy: a filesystem cannot hold
// the names and Linux cannot open the paths.
func TestPathPolicyLengthLimits(t *testing.T) {
	cases := []struct{ path, want string }{
		{"a/" + strings.Repeat("n", MaxSegmentBytes+1), "has a name of 256 bytes"},
		{strings.Repeat("日", 86) + "/x", "has a name of 258 bytes"}, // 86 characters, but 258 bytes on ext4
		{strings.Repeat(strings.Repeat("d", 200)+"/", 19) + "f", "is 3820 bytes long"},
	}
	cases[2].path += strings.Repeat("f", MaxPathBytes+1-len(cases[2].path))
	cases[2].want = "is 3840 bytes long, over the 3839 a package path may have"
	for _, c := range cases {
		for _, p := range []PathPolicy{PathsWindows, PathsPOSIX} {
			err := p.Check(c.path)
			var ne *NameError
			if !errors.As(err, &ne) || ne.Windows || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "shorten") {
				t.Errorf("%s: Check(%d bytes) = %v, want a *NameError saying %q and how to fix it", p, len(c.path), err, c.want)
			}
			if h := Hint(err, "do this"); h != err {
				t.Errorf("Hint added a way out to a limit no policy lifts: %v", h)
			}
		}
	}
	exact := strings.Repeat(strings.Repeat("d", 200)+"/", 19)
	exact += strings.Repeat("f", MaxPathBytes-len(exact))
	if err := PathsWindows.Check(exact); err != nil {
		t.Errorf("a path of exactly %d bytes: %v", len(exact), err)
	}
}

func TestParsePathPolicy(t *testing.T) {
	for in, want := range map[string]PathPolicy{"": PathsWindows, "windows": PathsWindows, "posix": PathsPOSIX} {
		if got, err := ParsePathPolicy(in); err != nil || got != want {
			t.Errorf("ParsePathPolicy(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	_, err := ParsePathPolicy("Windows")
	if err == nil || !strings.Contains(err.Error(), `path policy "Windows": want "windows"`) {
		t.Errorf("ParsePathPolicy(Windows) = %v", err)
	}
}

func TestWindowsPathUnits(t *testing.T) {
	for s, want := range map[string]int{"": 0, "abc": 3, "日本": 2, "😀": 2, `C:\ü`: 4} {
		if got := WindowsPathUnits(s); got != want {
			t.Errorf("WindowsPathUnits(%q) = %d, want %d", s, got, want)
		}
	}
}

// FuzzPathPolicy: Check never panics, the Windows policy is the stricter
// one, a refusal only it makes is marked so, and what it accepts has none
// of the characters Windows reserves.
func FuzzPathPolicy(f *testing.F) {
	for _, c := range windowsRefused {
		f.Add(c.path)
	}
	for _, s := range []string{"", "/", "a//b", "VERSION", "COM10", "日本/語.txt", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		win, posix := PathsWindows.Check(name), PathsPOSIX.Check(name)
		if posix != nil && (win == nil || win.Error() != posix.Error()) {
			t.Fatalf("posix refuses %q (%v) but windows says %v", name, posix, win)
		}
		var ne *NameError
		if win != nil && (!errors.As(win, &ne) || ne.Windows != (posix == nil)) {
			t.Fatalf("%q: windows refusal %#v, posix %v", name, win, posix)
		}
		if win == nil && strings.ContainsAny(name, "<>:\"|?*\x01\x1f") {
			t.Fatalf("windows accepts %q", name)
		}
	})
}
