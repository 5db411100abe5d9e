-- CreateEnum
CREATE TYPE "whatsapp_api" AS ENUM ('cloud', 'onprem');

-- CreateTable
CREATE TABLE "whatsapp_sends" (
    "id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "api" "whatsapp_api" NOT NULL,
    "recipient" TEXT NOT NULL,
    "template" TEXT NOT NULL,
    "language" TEXT NOT NULL,
    "contact_uuid" UUID,
    "api_client_id" UUID,
    "upstream_status" INTEGER,
    "status" INTEGER NOT NULL,
    "message_id" TEXT,
    "error" TEXT,
    "duration_ms" INTEGER NOT NULL,

    CONSTRAINT "whatsapp_sends_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "whatsapp_sends_created_at_idx" ON "whatsapp_sends"("created_at");

-- CreateIndex
CREATE INDEX "whatsapp_sends_recipient_created_at_idx" ON "whatsapp_sends"("recipient", "created_at");

-- AddForeignKey
ALTER TABLE "whatsapp_sends" ADD CONSTRAINT "whatsapp_sends_api_client_id_fkey" FOREIGN KEY ("api_client_id") REFERENCES "api_clients"("id") ON DELETE SET NULL ON UPDATE CASCADE;
