-- Direct APNs device tokens as push subscriptions.
ALTER TYPE "PushSubscriptionType" ADD VALUE IF NOT EXISTS 'apns';
