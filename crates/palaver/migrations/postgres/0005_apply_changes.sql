-- A batch's edits, deletions and reactions in one call (one round trip),
-- instead of three to six statements each. Each change is applied in
-- order, exactly as the statements in src/store/events.rs apply it on
-- SQLite: the target message is locked, the change is checked against it,
-- the current state is updated, the room's next seq is taken and the event
-- recorded. A refused change takes no seq.
--
-- Answers one row per change: its 1-based position, what became of it
-- ('applied', 'unchanged', 'no_message', 'forbidden', 'deleted',
-- 'too_many_reactions') and, when applied, its seq.
CREATE FUNCTION palaver_apply_changes(
    p_room      TEXT[],
    p_kind      TEXT[],
    p_target    BIGINT[],
    p_user      TEXT[],
    p_moderator BOOLEAN[],
    p_text      TEXT[],
    p_mentions  TEXT[],
    p_emoji     TEXT[],
    p_on        BOOLEAN[],
    p_at        TIMESTAMPTZ,
    p_max_emoji INTEGER
) RETURNS TABLE (change_ord INTEGER, change_outcome TEXT, change_seq BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    v_author   TEXT;
    v_deleted  BOOLEAN;
    v_mine     BIGINT;
    v_distinct BIGINT;
    v_same     BIGINT;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_room, 1), 0) LOOP
        change_ord := i;
        change_seq := NULL;
        SELECT m.author_id, m.deleted INTO v_author, v_deleted
        FROM messages m WHERE m.room = p_room[i] AND m.seq = p_target[i]
        FOR UPDATE;
        IF NOT FOUND THEN
            change_outcome := 'no_message';
        ELSIF p_kind[i] = 'edit' THEN
            IF v_author IS DISTINCT FROM p_user[i] THEN
                change_outcome := 'forbidden';
            ELSIF v_deleted THEN
                change_outcome := 'deleted';
            ELSE
                UPDATE messages SET text = p_text[i], edited_at = p_at, mentions = p_mentions[i]
                WHERE room = p_room[i] AND seq = p_target[i];
                change_outcome := 'applied';
            END IF;
        ELSIF p_kind[i] = 'delete' THEN
            IF NOT p_moderator[i] AND v_author IS DISTINCT FROM p_user[i] THEN
                change_outcome := 'forbidden';
            ELSIF v_deleted THEN
                change_outcome := 'deleted';
            ELSE
                -- The text and every earlier version of it are erased.
                UPDATE messages SET text = '', deleted = TRUE, mentions = NULL, files = NULL
                WHERE room = p_room[i] AND seq = p_target[i];
                UPDATE room_events SET text = '', mentions = NULL
                WHERE room = p_room[i] AND target = p_target[i] AND kind = 'edit';
                DELETE FROM reactions WHERE room = p_room[i] AND seq = p_target[i];
                change_outcome := 'applied';
            END IF;
        ELSIF p_kind[i] = 'reaction' THEN
            SELECT count(*) FILTER (WHERE r.emoji = p_emoji[i] AND r.user_id = p_user[i]),
                   count(DISTINCT r.emoji),
                   count(*) FILTER (WHERE r.emoji = p_emoji[i])
            INTO v_mine, v_distinct, v_same
            FROM reactions r WHERE r.room = p_room[i] AND r.seq = p_target[i];
            IF v_deleted THEN
                change_outcome := 'deleted';
            ELSIF (p_on[i] AND v_mine > 0) OR (NOT p_on[i] AND v_mine = 0) THEN
                change_outcome := 'unchanged';
            ELSIF p_on[i] AND v_same = 0 AND v_distinct >= p_max_emoji THEN
                change_outcome := 'too_many_reactions';
            ELSE
                IF p_on[i] THEN
                    INSERT INTO reactions (room, seq, emoji, user_id, at)
                    VALUES (p_room[i], p_target[i], p_emoji[i], p_user[i], p_at);
                ELSE
                    DELETE FROM reactions
                    WHERE room = p_room[i] AND seq = p_target[i]
                      AND emoji = p_emoji[i] AND user_id = p_user[i];
                END IF;
                change_outcome := 'applied';
            END IF;
        ELSE
            RAISE EXCEPTION 'unknown change kind %', p_kind[i];
        END IF;
        IF change_outcome = 'applied' THEN
            UPDATE rooms SET last_seq = last_seq + 1 WHERE name = p_room[i]
            RETURNING last_seq INTO change_seq;
            INSERT INTO room_events (room, seq, kind, target, user_id, text, mentions, emoji, added, at)
            VALUES (p_room[i], change_seq, p_kind[i], p_target[i], p_user[i],
                    CASE WHEN p_kind[i] = 'edit' THEN p_text[i] END,
                    CASE WHEN p_kind[i] = 'edit' THEN p_mentions[i] END,
                    CASE WHEN p_kind[i] = 'reaction' THEN p_emoji[i] END,
                    CASE WHEN p_kind[i] = 'reaction' THEN p_on[i] END,
                    p_at);
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
