package freshness

import (
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// Fidelity compares the turn records with the workload's ground truth,
// row by row (each record lists the item ids of the rows it holds).
type Fidelity struct {
	Turns int // in the ground truth
	// Exact turns came as one record holding exactly their rows.
	Exact int
	// Split turns came in two or more records, none holding another
	// turn's rows: rows that arrived after their turn had gone out.
	Split int
	// Merged turns share a record with rows of another turn.
	Merged int
	// Lost turns have a row that is in no record.
	Lost int
	// Pieces are the records of split turns beside the one holding the
	// turn's first row: late rows that became records of their own.
	Pieces int
	// RepeatedRows are rows in more than one record.
	RepeatedRows int
	// SplitLast counts split turns that were the last of their
	// conversation (reply_timeout decided when they went out);
	// SplitFollowed those followed by another turn (reorder_window did).
	SplitLast, SplitFollowed int
	// PieceRows counts the rows of the pieces by event name.
	PieceRows map[string]int
}

func classify(w *workload.Workload, arrivals []arrival) Fidelity {
	f := Fidelity{Turns: len(w.Turns), PieceRows: map[string]int{}}
	turnOf := make(map[string]int, len(w.Rows))
	for i := range w.Turns {
		for _, id := range w.Turns[i].ItemIDs {
			turnOf[id] = i
		}
	}
	nameOf := make(map[string]string, len(w.Rows))
	for _, r := range w.Rows {
		nameOf[r.ItemID] = r.Name
	}
	recordsOf := make(map[string][]int, len(w.Rows)) // item id -> records holding it
	for ri, a := range arrivals {
		for _, id := range a.itemIDs {
			recordsOf[id] = append(recordsOf[id], ri)
		}
	}
	for _, rs := range recordsOf {
		if len(rs) > 1 {
			f.RepeatedRows++
		}
	}
	mixed := make([]bool, len(arrivals)) // a record holding rows of two turns
	for ri, a := range arrivals {
		for _, id := range a.itemIDs {
			if t, ok := turnOf[id]; !ok || t != turnOf[a.itemIDs[0]] {
				mixed[ri] = true
			}
		}
	}
	for i := range w.Turns {
		t := &w.Turns[i]
		records := map[int]bool{}
		lost, merged := false, false
		for _, id := range t.ItemIDs {
			rs := recordsOf[id]
			if len(rs) == 0 {
				lost = true
			}
			for _, ri := range rs {
				records[ri] = true
				merged = merged || mixed[ri]
			}
		}
		last := i+1 == len(w.Turns) || w.Turns[i+1].ConversationID != t.ConversationID
		switch {
		case lost:
			f.Lost++
		case merged:
			f.Merged++
		case len(records) > 1:
			f.Split++
			if last {
				f.SplitLast++
			} else {
				f.SplitFollowed++
			}
			main := recordsOf[t.ItemIDs[0]][0]
			for ri := range records {
				if ri == main {
					continue
				}
				f.Pieces++
				for _, id := range arrivals[ri].itemIDs {
					f.PieceRows[nameOf[id]]++
				}
			}
		default:
			f.Exact++
		}
	}
	return f
}
