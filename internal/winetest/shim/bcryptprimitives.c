/*
 * bcryptprimitives.dll for Wine 8.0, which lacks it: Go (1.24 and later)
 * Windows binaries load it at start for ProcessPrng, the system's random
 * generator, and die with "bcryptprimitives.dll not found" without it.
 * Windows 10 and later ship the DLL; only Wine needs this stand-in, which
 * forwards to RtlGenRandom (advapi32's SystemFunction036), Windows's older
 * CSPRNG entry point, which Wine implements.
 *
 * Built by internal/winetest with:
 *   x86_64-w64-mingw32-gcc -O2 -shared -nostartfiles -Wl,--entry=0 \
 *     -o bcryptprimitives.dll bcryptprimitives.c bcryptprimitives.def -ladvapi32
 */
#include <windows.h>
#include <ntsecapi.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG n = len > 0x7fffffff ? 0x7fffffff : (ULONG)len;
    if (!RtlGenRandom(data, n)) return FALSE;
    data += n; len -= n;
  }
  return TRUE;
}
