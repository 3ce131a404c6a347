package proc

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/bindguard/bindguard/internal/cgroup"
	"github.com/bindguard/bindguard/internal/observed"
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

// newGroupCache is newUserCache for group ids.
func newGroupCache() func(int) string {
	cache := map[int]string{}
	return func(gid int) string {
		if n, ok := cache[gid]; ok {
			return n
		}
		n := strconv.Itoa(gid)
		if g, err := user.LookupGroupId(n); err == nil && g.Name != "" {
			n = cgroup.Sanitize(g.Name)
		}
		cache[gid] = n
		return n
	}
}

// namer names the users and groups of processes: from the system's databases for processes
// that share bindguard's mount namespace, and for those of another (a container) from that
// root's own /etc/passwd and /etc/group, read inside the root only (readInRoot), with the ids
// mapped through the process's user namespace. It is used from one goroutine.
type namer struct {
	root          string
	users, groups func(int) string
	self          string // bindguard's mount namespace, "mnt:[N]"; "" when unknown
	dbs           map[string]*userDB
}

// userDB is one container's view: its names and its id maps.
type userDB struct {
	users, groups  map[int]string
	uidMap, gidMap []idRange
}

func (s *Scanner) newNamer() *namer {
	n := &namer{root: s.root(), users: s.Users, groups: s.Groups, dbs: map[string]*userDB{}}
	if n.users == nil {
		n.users = newUserCache()
	}
	if n.groups == nil {
		n.groups = newGroupCache()
	}
	n.self, _ = os.Readlink(filepath.Join(n.root, "self", "ns", "mnt"))
	return n
}

// name fills p's User, Group and ContainerUID.
func (n *namer) name(p *observed.Process) {
	mnt, _ := os.Readlink(filepath.Join(n.root, strconv.Itoa(p.PID), "ns", "mnt"))
	n.nameIn(p, mnt)
}

// nameIn is name for a process whose mount namespace link ("mnt:[N]") has been read; "" when
// it could not be.
func (n *namer) nameIn(p *observed.Process, mnt string) {
	dir := filepath.Join(n.root, strconv.Itoa(p.PID))
	if mnt == "" || mnt == n.self {
		if p.UID >= 0 {
			p.User = n.users(p.UID)
		}
		if p.GID >= 0 {
			p.Group = n.groups(p.GID)
		}
		return
	}
	userns, _ := os.Readlink(filepath.Join(dir, "ns", "user"))
	key := mnt + " " + userns
	db, ok := n.dbs[key]
	if !ok {
		db = loadUserDB(dir)
		n.dbs[key] = db
	}
	p.User = containerName(db.users, db.uidMap, p.UID, &p.ContainerUID)
	var gid *int
	p.Group = containerName(db.groups, db.gidMap, p.GID, &gid)
}

// loadUserDB reads a process's names and id maps. What cannot be read stays empty: ids are
// then shown as numbers, never named from the host's databases.
func loadUserDB(dir string) *userDB {
	db := &userDB{}
	root := filepath.Join(dir, "root")
	if b, err := readInRoot(root, "etc/passwd", maxUserDB); err == nil {
		db.users = parseIDNames(b)
	}
	if b, err := readInRoot(root, "etc/group", maxUserDB); err == nil {
		db.groups = parseIDNames(b)
	}
	if b, err := readSmall(filepath.Join(dir, "uid_map")); err == nil {
		db.uidMap = parseIDMap(b)
	}
	if b, err := readSmall(filepath.Join(dir, "gid_map")); err == nil {
		db.gidMap = parseIDMap(b)
	}
	return db
}

// containerName names id (as bindguard sees it) the way the container does: mapped into its
// user namespace, then looked up in its database. A mapped id that differs is stored in
// *mapped. An id the map does not cover is shown as bindguard sees it.
func containerName(names map[int]string, m []idRange, id int, mapped **int) string {
	if id < 0 {
		return ""
	}
	in := id
	if len(m) > 0 && !identity(m) {
		if v, ok := inside(m, id); ok {
			in = v
			if in != id {
				*mapped = &in
			}
		} else {
			return strconv.Itoa(id)
		}
	}
	if name, ok := names[in]; ok && name != "" {
		return cgroup.Sanitize(name)
	}
	return strconv.Itoa(in)
}
