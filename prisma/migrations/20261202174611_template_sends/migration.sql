-- CreateEnum
CREATE TYPE "template_send_status" AS ENUM ('queued', 'sent', 'failed', 'cancelled');

-- CreateTable
CREATE TABLE "template_sends" (
    "id" UUID NOT NULL,
    "api" "whatsapp_api" NOT NULL,
    "recipient" TEXT NOT NULL,
    "template" TEXT NOT NULL,
    "language" TEXT NOT NULL,
    "message" JSONB NOT NULL,
    "contact_uuid" UUID,
    "api_client_id" UUID,
    "idempotency_key" TEXT,
    "status" "template_send_status" NOT NULL DEFAULT 'queued',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "prior_attempts" INTEGER NOT NULL DEFAULT 0,
    "message_id" TEXT,
    "upstream_status" INTEGER,
    "last_error" TEXT,
    "cancel_reason" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "sent_at" TIMESTAMPTZ(3),
    "lease_until" TIMESTAMPTZ(3),
    "next_attempt_at" TIMESTAMPTZ(3),

    CONSTRAINT "template_sends_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "template_sends_status_created_at_idx" ON "template_sends"("status", "created_at");

-- CreateIndex
CREATE INDEX "template_sends_created_at_idx" ON "template_sends"("created_at");

-- CreateIndex
CREATE UNIQUE INDEX "template_sends_one_per_client_key" ON "template_sends"("api_client_id", "idempotency_key");

-- AddForeignKey
ALTER TABLE "template_sends" ADD CONSTRAINT "template_sends_api_client_id_fkey" FOREIGN KEY ("api_client_id") REFERENCES "api_clients"("id") ON DELETE SET NULL ON UPDATE CASCADE;
