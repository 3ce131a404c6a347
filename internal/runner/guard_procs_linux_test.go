package runner

import "testing"

func TestGuardProcs(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 1, 4: 1, 7: 1, 8: 2, 32: 8} {
		if got := guardProcs(n); got != want {
			t.Errorf("guardProcs(%d) = %d, want %d", n, got, want)
		}
	}
}
