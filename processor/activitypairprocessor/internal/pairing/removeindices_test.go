package pairing

import "testing"

// An emptied conversation stays in memory for a while; its row array must
// not stay with it, nor a large array under a few remaining rows.
func TestRemoveIndicesReleasesRowArrays(t *testing.T) {
	rows := make([]Row, 40)
	for i := range rows {
		rows[i].At = int64(i)
	}
	all := make([]int32, len(rows))
	for i := range all {
		all[i] = int32(i)
	}
	if got := removeIndices(rows, all); got != nil {
		t.Errorf("all rows removed: got len %d cap %d, want a nil slice", len(got), cap(got))
	}

	rows = make([]Row, 40)
	for i := range rows {
		rows[i].At = int64(i)
	}
	kept := removeIndices(rows, all[2:]) // keeps rows 0 and 1
	if len(kept) != 2 || kept[0].At != 0 || kept[1].At != 1 {
		t.Fatalf("kept %+v, want rows 0 and 1", kept)
	}
	if cap(kept) > 16 {
		t.Errorf("2 rows left in an array of %d", cap(kept))
	}

	rows = make([]Row, 10)
	kept = removeIndices(rows, []int32{3})
	if len(kept) != 9 || cap(kept) != 10 {
		t.Errorf("one of ten removed: len %d cap %d, want the array reused", len(kept), cap(kept))
	}
}
