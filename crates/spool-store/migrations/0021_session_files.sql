-- The extra files a Livy session asked for (`jars`, `pyFiles`, `files`, `archives`): the
-- snapshot holding them and each list as given and as named there. NULL when it asked for none.
ALTER TABLE sessions ADD COLUMN files_json TEXT;
