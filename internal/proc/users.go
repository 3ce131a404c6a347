package proc

import (
	"os/user"
	"strconv"

	"github.com/bindguard/bindguard/internal/cgroup"
)

// newUserCache returns a uid-to-name lookup over the system's user database, caching answers.
// It is used from one goroutine.
func newUserCache() func(int) string {
	cache := map[int]string{}
	return func(uid int) string {
		if n, ok := cache[uid]; ok {
			return n
		}
		n := strconv.Itoa(uid)
		if u, err := user.LookupId(n); err == nil && u.Username != "" {
			n = cgroup.Sanitize(u.Username)
		}
		cache[uid] = n
		return n
	}
}
