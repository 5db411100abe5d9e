-- CreateEnum
CREATE TYPE "optout_status" AS ENUM ('queued', 'submitted', 'failed', 'cancelled');

-- CreateEnum
CREATE TYPE "attempt_outcome" AS ENUM ('success', 'transient', 'permanent');

-- CreateTable
CREATE TABLE "api_clients" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "role" TEXT NOT NULL DEFAULT 'rapidpro',
    "key_id" TEXT NOT NULL,
    "secret_hash" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_used_at" TIMESTAMPTZ(3),
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "api_clients_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "optouts" (
    "id" UUID NOT NULL,
    "contact_uuid" UUID NOT NULL,
    "contact_urn" TEXT,
    "contact_fields" JSONB,
    "reason_category" TEXT,
    "reason_value" TEXT,
    "flow_uuid" TEXT,
    "run_uuid" TEXT,
    "api_client_id" UUID,
    "idempotency_key" TEXT,
    "status" "optout_status" NOT NULL DEFAULT 'queued',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,
    "cancel_reason" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "submitted_at" TIMESTAMPTZ(3),
    "lease_until" TIMESTAMPTZ(3),

    CONSTRAINT "optouts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "optout_attempts" (
    "id" UUID NOT NULL,
    "optout_id" UUID NOT NULL,
    "number" INTEGER NOT NULL,
    "partner" TEXT NOT NULL,
    "started_at" TIMESTAMPTZ(3) NOT NULL,
    "duration_ms" INTEGER NOT NULL,
    "outcome" "attempt_outcome" NOT NULL,
    "http_status" INTEGER,
    "response" TEXT,
    "error" TEXT,

    CONSTRAINT "optout_attempts_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "api_clients_name_key" ON "api_clients"("name");

-- CreateIndex
CREATE UNIQUE INDEX "api_clients_key_id_key" ON "api_clients"("key_id");

-- CreateIndex
CREATE INDEX "optouts_status_created_at_idx" ON "optouts"("status", "created_at");

-- CreateIndex
CREATE INDEX "optouts_contact_uuid_idx" ON "optouts"("contact_uuid");

-- CreateIndex
CREATE UNIQUE INDEX "optouts_idempotency_key_key" ON "optouts"("idempotency_key");

-- CreateIndex
CREATE UNIQUE INDEX "optouts_one_queued_per_contact" ON "optouts"("contact_uuid") WHERE (status = 'queued');

-- CreateIndex
CREATE UNIQUE INDEX "optout_attempts_optout_id_number_key" ON "optout_attempts"("optout_id", "number");

-- AddForeignKey
ALTER TABLE "optouts" ADD CONSTRAINT "optouts_api_client_id_fkey" FOREIGN KEY ("api_client_id") REFERENCES "api_clients"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "optout_attempts" ADD CONSTRAINT "optout_attempts_optout_id_fkey" FOREIGN KEY ("optout_id") REFERENCES "optouts"("id") ON DELETE CASCADE ON UPDATE CASCADE;
