-- Users hold a workspace role, as Azure ML's built-in roles name them, in place of the admin
-- flag: admins become Owners, and everyone else AzureML Data Scientists, which is what they
-- could do before (submit and manage their own work, attach no computes).
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'AzureML Data Scientist'
    CHECK (role IN ('Owner', 'Contributor', 'AzureML Data Scientist', 'Reader'));
UPDATE users SET role = 'Owner' WHERE is_admin = 1;
-- One source of truth: an Owner is what an admin was.
ALTER TABLE users DROP COLUMN is_admin;
