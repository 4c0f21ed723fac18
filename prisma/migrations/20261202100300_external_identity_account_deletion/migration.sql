-- Identities from an external provider (JWT_JWKS_URL) and account deletion.

-- Accounts created from an external identity have no password; a deleted account's hash is removed.
ALTER TABLE "users" ALTER COLUMN "password_hash" DROP NOT NULL;

-- External tokens issued (iat) at or before this instant are refused: session revocation for tokens without a login.
ALTER TABLE "users" ADD COLUMN "sessions_revoked_at" TIMESTAMPTZ(3);

-- Set when the account was deleted (anonymised); the row stays so conversations keep a "Deleted user" member.
ALTER TABLE "users" ADD COLUMN "deleted_at" TIMESTAMPTZ(3);

-- Tombstoned messages; another change adds the same column for edit/delete, hence IF NOT EXISTS.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS deleted_at TIMESTAMPTZ(3);

-- CreateTable
CREATE TABLE "external_identities" (
    "issuer" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "user_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "external_identities_pkey" PRIMARY KEY ("issuer","subject")
);

-- CreateTable
CREATE TABLE "erased_identities" (
    "issuer" TEXT NOT NULL,
    "subject_hash" TEXT NOT NULL,
    "erased_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "erased_identities_pkey" PRIMARY KEY ("issuer","subject_hash")
);

-- CreateIndex
CREATE UNIQUE INDEX "external_identities_user_id_key" ON "external_identities"("user_id");

-- AddForeignKey
ALTER TABLE "external_identities" ADD CONSTRAINT "external_identities_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
