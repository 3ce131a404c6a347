package kernel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// The owner scan's program is loaded without cilium/ebpf's parse of the kernel's BTF when it
// can be: that parse indexes the names of all ~150,000 kernel types (~10 ms) and then, to find
// the iterator's attach target, decodes everything reachable from task_struct (~6-12 ms),
// while the program needs a dozen fields of nine structs and one type id. loadOwnersProgram
// walks the raw BTF once for those, builds a small spec holding only them (with the kernel's
// offsets), relocates the program against it with cilium/ebpf's own CO-RE code, and loads it
// with BPF_PROG_LOAD directly, attached to the kernel's bpf_iter_task_file. Whatever it does not
// handle makes it fail, and NewSocketScanner then loads through cilium/ebpf as before:
// TestOwnersProgramRelocation holds its relocated instructions to cilium/ebpf's.

// vmlinuxBTF is where the running kernel's BTF is.
const vmlinuxBTF = "/sys/kernel/btf/vmlinux"

// loadOwnersProgram loads the owner scan's program the fast way (see above).
func loadOwnersProgram() (*ebpf.Program, error) {
	raw, done, err := readVmlinuxBTF()
	if err != nil {
		return nil, err
	}
	defer done()
	spec, err := loadOwners()
	if err != nil {
		return nil, err
	}
	ps := spec.Programs[ownersProgBindguardSocks]
	if ps == nil {
		return nil, fmt.Errorf("no program %s", ownersProgBindguardSocks)
	}
	insns, attachID, err := relocateOwners(spec, ps, raw)
	if err != nil {
		return nil, err
	}
	for name, ms := range spec.Maps {
		m, err := ebpf.NewMap(ms)
		if err != nil {
			return nil, fmt.Errorf("map %s: %w", name, err)
		}
		err = insns.AssociateMap(name, m)
		// the program holds its own reference to the map once loaded
		defer func() { _ = m.Close() }()
		if err != nil && !errors.Is(err, asm.ErrUnreferencedSymbol) {
			return nil, fmt.Errorf("map %s: %w", name, err)
		}
	}
	for i := range insns {
		if ins := &insns[i]; ins.Reference() != "" && ins.Map() == nil {
			return nil, fmt.Errorf("instruction %d: unresolved reference %s", i, ins.Reference())
		}
	}
	var code bytes.Buffer
	if err := insns.Marshal(&code, spec.ByteOrder); err != nil {
		return nil, err
	}
	fd, err := progLoad(code.Bytes(), ps.License, ps.Name, attachID)
	if err != nil {
		return nil, err
	}
	prog, err := ebpf.NewProgramFromFD(fd)
	if err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	return prog, nil
}

// readVmlinuxBTF maps the kernel's BTF (read-only, as cilium/ebpf does: the file never
// changes), or reads it where it cannot be mapped; done frees it.
func readVmlinuxBTF() (raw []byte, done func(), err error) {
	f, err := os.Open(vmlinuxBTF)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.Size() > 0 && st.Size() < 1<<30 {
		if raw, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_PRIVATE); err == nil {
			return raw, func() { _ = unix.Munmap(raw) }, nil
		}
	}
	raw, err = io.ReadAll(f)
	return raw, func() {}, err
}

// relocateOwners returns ps's instructions relocated against the kernel's BTF raw, and the
// BTF id of its attach target (bpf_iter_<AttachTo>).
func relocateOwners(spec *ebpf.CollectionSpec, ps *ebpf.ProgramSpec, raw []byte) (asm.Instructions, btf.TypeID, error) {
	if ps.Type != ebpf.Tracing || ps.AttachType != ebpf.AttachTraceIter || ps.AttachTo == "" {
		return nil, 0, fmt.Errorf("program %s is not a BPF iterator", ps.Name)
	}
	if spec.ByteOrder == nil || spec.ByteOrder.Uint16([]byte{1, 0}) != binary.NativeEndian.Uint16([]byte{1, 0}) {
		return nil, 0, errors.New("the program is not of this machine's byte order")
	}
	// The local types the relocations start from, and every member name they could use.
	structs := map[string]bool{}
	members := map[string]bool{}
	if spec.Types != nil {
		for typ, err := range spec.Types.All() {
			if err != nil {
				return nil, 0, err
			}
			var ms []btf.Member
			switch t := typ.(type) {
			case *btf.Struct:
				ms = t.Members
			case *btf.Union:
				ms = t.Members
			default:
				continue
			}
			if n := typ.TypeName(); n != "" {
				structs[n] = true
			}
			for _, m := range ms {
				members[m.Name] = true
			}
		}
	}
	attachName := "bpf_iter_" + ps.AttachTo
	kb, found, err := parseRawBTF(raw, structs, attachName)
	if err != nil {
		return nil, 0, err
	}
	if len(found.funcs) != 1 {
		return nil, 0, fmt.Errorf("%d kernel functions %s", len(found.funcs), attachName)
	}
	c := &btfConv{kb: kb, members: members}
	var targets []btf.Type
	for _, id := range found.structs {
		t, err := c.typ(id, 0)
		if err != nil {
			return nil, 0, err
		}
		targets = append(targets, t)
	}
	b, err := btf.NewBuilder(targets, nil)
	if err != nil {
		return nil, 0, err
	}
	small, err := b.Marshal(nil, nil)
	if err != nil {
		return nil, 0, err
	}
	target, err := btf.LoadSpecFromReader(bytes.NewReader(small))
	if err != nil {
		return nil, 0, err
	}

	insns := ps.Instructions
	insns = append(asm.Instructions(nil), insns...)
	var relos []*btf.CORERelocation
	var at []int
	for i := range insns {
		r := btf.CORERelocationMetadata(&insns[i])
		if r == nil {
			continue
		}
		// Only relocations of field offsets and sizes and type sizes: a target type id
		// would be the small spec's, not the kernel's, and enum values are not kept.
		kind, _, _ := strings.Cut(strings.TrimPrefix(r.String(), "CORERelocation("), ",")
		switch kind {
		case "byte_off", "byte_sz", "field_exists", "signed", "lshift_u64", "rshift_u64", "type_size", "local_type_id":
		default:
			return nil, 0, fmt.Errorf("CO-RE relocation %s not handled", kind)
		}
		relos = append(relos, r)
		at = append(at, i)
	}
	if len(relos) > 0 {
		var local btf.Builder
		fixups, err := btf.CORERelocate(relos, []*btf.Spec{target}, spec.ByteOrder, local.Add)
		if err != nil {
			return nil, 0, err
		}
		for i, f := range fixups {
			if err := f.Apply(&insns[at[i]]); err != nil {
				return nil, 0, fmt.Errorf("fixup for %s: %w", relos[i], err)
			}
		}
	}
	return insns, btf.TypeID(found.funcs[0]), nil
}

// progLoad loads a BPF iterator program (BPF_PROG_TYPE_TRACING, BPF_TRACE_ITER) attached to
// the vmlinux BTF function attachID, and returns its fd.
func progLoad(code []byte, license, name string, attachID btf.TypeID) (int, error) {
	// union bpf_attr's BPF_PROG_LOAD fields up to attach_btf_obj_fd (kernel 5.8+ knows them all).
	type progLoadAttr struct {
		progType           uint32
		insnCnt            uint32
		insns              uint64
		license            uint64
		logLevel           uint32
		logSize            uint32
		logBuf             uint64
		kernVersion        uint32
		progFlags          uint32
		progName           [unix.BPF_OBJ_NAME_LEN]byte
		progIfindex        uint32
		expectedAttachType uint32
		progBtfFd          uint32
		funcInfoRecSize    uint32
		funcInfo           uint64
		funcInfoCnt        uint32
		lineInfoRecSize    uint32
		lineInfo           uint64
		lineInfoCnt        uint32
		attachBtfID        uint32
		attachBtfObjFd     uint32
		_                  uint32
	}
	if len(code) == 0 || len(code)%asm.InstructionSize != 0 {
		return -1, fmt.Errorf("program of %d bytes", len(code))
	}
	lic := append([]byte(license), 0)
	attr := progLoadAttr{
		progType:           unix.BPF_PROG_TYPE_TRACING,
		insnCnt:            uint32(len(code) / asm.InstructionSize),   // #nosec G115 -- a program of at most a million instructions
		insns:              uint64(uintptr(unsafe.Pointer(&code[0]))), // #nosec G103 -- bpf_attr takes the instructions' address
		license:            uint64(uintptr(unsafe.Pointer(&lic[0]))),  // #nosec G103 -- and the license string's
		expectedAttachType: unix.BPF_TRACE_ITER,
		attachBtfID:        uint32(attachID),
	}
	copy(attr.progName[:unix.BPF_OBJ_NAME_LEN-1], name)
	for {
		fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr)) // #nosec G103 -- the bpf(2) call takes bpf_attr by address
		runtime.KeepAlive(code)
		runtime.KeepAlive(lic)
		if errno == unix.EINTR || errno == unix.EAGAIN {
			continue
		}
		if errno != 0 {
			return -1, fmt.Errorf("BPF_PROG_LOAD: %w", errno)
		}
		unix.CloseOnExec(int(fd))
		return int(fd), nil
	}
}

// rawBTF is a kernel's BTF as it is in /sys/kernel/btf/vmlinux (native byte order).
type rawBTF struct {
	types, strs []byte
	offs        []uint32 // offs[id]: where type id starts in types (id 0 is void)
}

// BTF kinds (include/uapi/linux/btf.h).
const (
	btfKindInt      = 1
	btfKindPtr      = 2
	btfKindArray    = 3
	btfKindStruct   = 4
	btfKindUnion    = 5
	btfKindEnum     = 6
	btfKindFwd      = 7
	btfKindTypedef  = 8
	btfKindVolatile = 9
	btfKindConst    = 10
	btfKindRestrict = 11
	btfKindFunc     = 12
	btfKindProto    = 13
	btfKindVar      = 14
	btfKindDatasec  = 15
	btfKindFloat    = 16
	btfKindDeclTag  = 17
	btfKindTypeTag  = 18
	btfKindEnum64   = 19
)

// parseRawBTF checks the header, finds where every type starts and, in the same pass, the ids
// of the structs and unions named in structs (flavours ___x included, as CO-RE matches them)
// and of the functions named fn.
func parseRawBTF(b []byte, structs map[string]bool, fn string) (*rawBTF, found, error) {
	var f found
	ne := binary.NativeEndian
	if len(b) < 24 || ne.Uint16(b) != 0xeb9f {
		return nil, f, errors.New("vmlinux BTF: bad header or byte order")
	}
	hdr := uint64(ne.Uint32(b[4:]))
	typeOff, typeLen := uint64(ne.Uint32(b[8:])), uint64(ne.Uint32(b[12:]))
	strOff, strLen := uint64(ne.Uint32(b[16:])), uint64(ne.Uint32(b[20:]))
	if hdr+typeOff+typeLen > uint64(len(b)) || hdr+strOff+strLen > uint64(len(b)) {
		return nil, f, errors.New("vmlinux BTF: sections out of bounds")
	}
	k := &rawBTF{types: b[hdr+typeOff : hdr+typeOff+typeLen], strs: b[hdr+strOff : hdr+strOff+strLen]}
	k.offs = make([]uint32, 1, 1+len(k.types)/24)
	// Most names are none of those: a name's first byte rules it out before the lookup.
	var first [256]bool
	for n := range structs {
		if n != "" {
			first[n[0]] = true
		}
	}
	if fn != "" {
		first[fn[0]] = true
	}
	t := k.types
	for off := 0; off < len(t); {
		if off+12 > len(t) {
			return nil, f, errors.New("vmlinux BTF: truncated type")
		}
		info := ne.Uint32(t[off+4:])
		kind := (info >> 24) & 0x1f
		vlen := int(info & 0xffff)
		n := 12
		switch kind {
		case btfKindInt, btfKindVar, btfKindDeclTag:
			n += 4
		case btfKindArray:
			n += 12
		case btfKindStruct, btfKindUnion, btfKindDatasec, btfKindEnum64:
			n += 12 * vlen
		case btfKindEnum, btfKindProto:
			n += 8 * vlen
		case btfKindPtr, btfKindFwd, btfKindTypedef, btfKindVolatile, btfKindConst, btfKindRestrict,
			btfKindFunc, btfKindFloat, btfKindTypeTag:
		default:
			return nil, f, fmt.Errorf("vmlinux BTF: unknown kind %d", kind)
		}
		if off+n > len(t) {
			return nil, f, errors.New("vmlinux BTF: truncated type")
		}
		id := uint32(len(k.offs))            // #nosec G115 -- ids are bounded by the type section's size, itself a uint32
		k.offs = append(k.offs, uint32(off)) // #nosec G115 -- an offset into a section of uint32 length
		if kind == btfKindStruct || kind == btfKindUnion || kind == btfKindFunc {
			if nameOff := ne.Uint32(t[off:]); nameOff != 0 && int(nameOff) < len(k.strs) && first[k.strs[nameOff]] {
				s := k.strs[nameOff:]
				end := bytes.IndexByte(s, 0)
				if end < 0 {
					return nil, f, errors.New("vmlinux BTF: unterminated name")
				}
				name := s[:end]
				if kind == btfKindFunc {
					if string(name) == fn {
						f.funcs = append(f.funcs, id)
					}
				} else {
					if i := bytes.LastIndex(name, []byte("___")); i > 0 {
						name = name[:i]
					}
					if structs[string(name)] {
						f.structs = append(f.structs, id)
					}
				}
			}
		}
		off += n
	}
	return k, f, nil
}

// name is the string at off in the string section.
func (k *rawBTF) name(off uint32) (string, error) {
	if int(off) >= len(k.strs) {
		return "", errors.New("vmlinux BTF: name out of bounds")
	}
	s := k.strs[off:]
	end := bytes.IndexByte(s, 0)
	if end < 0 {
		return "", errors.New("vmlinux BTF: unterminated name")
	}
	return string(s[:end]), nil
}

// header returns type id's name offset, kind, vlen, kind flag, size-or-type and its data.
func (k *rawBTF) header(id uint32) (nameOff, kind uint32, vlen int, kflag bool, sizeType uint32, data []byte, err error) {
	if id == 0 || int(id) >= len(k.offs) {
		return 0, 0, 0, false, 0, nil, fmt.Errorf("vmlinux BTF: no type %d", id)
	}
	ne := binary.NativeEndian
	t := k.types[k.offs[id]:]
	info := ne.Uint32(t[4:])
	return ne.Uint32(t), (info >> 24) & 0x1f, int(info & 0xffff), info>>31 == 1, ne.Uint32(t[8:]), t[12:], nil
}

// found is what parseRawBTF found: the ids of the structs and unions, and of the functions, named.
type found struct{ structs, funcs []uint32 }

// btfConv makes cilium/ebpf types of kernel types, as much of them as CO-RE field and size
// relocations look at: a struct keeps its size, the members named in members, its anonymous
// members (whose members relocations reach through) and its last member (flexible arrays);
// pointers point to void (a relocation never follows one); typedefs and qualifiers are
// dropped (CO-RE looks through them); enums have no values.
type btfConv struct {
	kb      *rawBTF
	members map[string]bool
	// done holds each type once converted: types reached through several members are
	// converted once (anonymous members fanning out level after level would otherwise cost
	// exponential time in malformed BTF).
	done map[uint32]btf.Type
}

// maxConvDepth bounds the nesting of embedded structs and arrays.
const maxConvDepth = 32

func (c *btfConv) typ(id uint32, depth int) (btf.Type, error) {
	if t, ok := c.done[id]; ok {
		return t, nil
	}
	t, err := c.conv(id, depth)
	if err != nil {
		return nil, err
	}
	if c.done == nil {
		c.done = map[uint32]btf.Type{}
	}
	c.done[id] = t
	return t, nil
}

func (c *btfConv) conv(id uint32, depth int) (btf.Type, error) {
	if id == 0 {
		return &btf.Void{}, nil
	}
	if depth > maxConvDepth {
		return nil, errors.New("vmlinux BTF: types nested too deep")
	}
	nameOff, kind, vlen, kflag, sizeType, data, err := c.kb.header(id)
	if err != nil {
		return nil, err
	}
	ne := binary.NativeEndian
	name, err := c.kb.name(nameOff)
	if err != nil {
		return nil, err
	}
	switch kind {
	case btfKindInt:
		enc := btf.IntEncoding((ne.Uint32(data) >> 24) & 0xf)
		return &btf.Int{Name: name, Size: sizeType, Encoding: enc}, nil
	case btfKindPtr:
		return &btf.Pointer{Target: &btf.Void{}}, nil
	case btfKindArray:
		elem, err := c.typ(ne.Uint32(data), depth+1)
		if err != nil {
			return nil, err
		}
		index, err := c.typ(ne.Uint32(data[4:]), depth+1)
		if err != nil {
			return nil, err
		}
		return &btf.Array{Index: index, Type: elem, Nelems: ne.Uint32(data[8:])}, nil
	case btfKindStruct, btfKindUnion:
		var ms []btf.Member
		for i := range vlen {
			m := data[12*i:]
			mname, err := c.kb.name(ne.Uint32(m))
			if err != nil {
				return nil, err
			}
			if mname != "" && !c.members[mname] && i != vlen-1 {
				continue
			}
			mt, err := c.typ(ne.Uint32(m[4:]), depth+1)
			if err != nil {
				return nil, err
			}
			off := ne.Uint32(m[8:])
			var bits btf.Bits
			if kflag {
				bits, off = btf.Bits(off>>24), off&0xffffff
			}
			ms = append(ms, btf.Member{Name: mname, Type: mt, Offset: btf.Bits(off), BitfieldSize: bits})
		}
		if kind == btfKindUnion {
			return &btf.Union{Name: name, Size: sizeType, Members: ms}, nil
		}
		return &btf.Struct{Name: name, Size: sizeType, Members: ms}, nil
	case btfKindEnum, btfKindEnum64:
		return &btf.Enum{Name: name, Size: sizeType, Signed: kflag}, nil
	case btfKindFwd:
		k := btf.FwdStruct
		if kflag {
			k = btf.FwdUnion
		}
		return &btf.Fwd{Name: name, Kind: k}, nil
	case btfKindTypedef, btfKindVolatile, btfKindConst, btfKindRestrict, btfKindTypeTag:
		return c.typ(sizeType, depth+1)
	case btfKindFloat:
		return &btf.Float{Name: name, Size: sizeType}, nil
	}
	return nil, fmt.Errorf("vmlinux BTF: type %d of kind %d inside a struct", id, kind)
}
